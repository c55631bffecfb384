"""The emulated machine: actors and the kernel code paths they run.

Plain Python: nothing in this package imports Ray (cluster/ does that).  The
modules may also run compiled from the same source (actors/_core.py says how,
and guards against a compiled module that no longer matches its source).
"""

from . import _core

_core.install()
