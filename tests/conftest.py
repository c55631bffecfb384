import os
from pathlib import Path

# Ray 2.60: clients of a multi-node cluster must use token auth, and must say
# so before Ray is imported (netcabal's own modules do the same).
os.environ.setdefault("RAY_AUTH_MODE", "token")

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "scenarios"
QUICKSTART = SCENARIOS / "quickstart.toml"
# the shared capture corpus sits beside the repository (../shared), in a
# developer's checkout and in CI alike; NETCABAL_CORPUS overrides
CORPUS = Path(os.environ.get("NETCABAL_CORPUS", REPO.parent / "shared" / "corpus" / "pcap"))

settings.register_profile("ci", deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def run_scn(overrides=(), path=QUICKSTART, **kw):
    from cluster.run import run
    from cluster.scenario import load
    return run(load(path, list(overrides)), **kw)


@pytest.fixture
def quickstart():
    return QUICKSTART
