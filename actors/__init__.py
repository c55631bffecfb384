"""The emulated machine: actors and the kernel code paths they run.

Plain Python: nothing in this package imports Ray (cluster/ does that).
"""
