"""Engine, executors, scenarios, CLI and reports for netcabal."""

__version__ = "0.1.0"
