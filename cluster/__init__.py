"""Engine, executors, scenarios, CLI and reports for netcabal."""

import actors  # noqa: F401 - places the compiled-core guard before cluster.engine loads

__version__ = "0.1.0"
