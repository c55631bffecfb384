"""The compiled core (actors/_core.py): same results as the source, and never
stale.

Compiled modules must give byte-identical metrics to the plain-Python source
they were built from (checked by running scenarios both ways in fresh
processes), and a module whose source changed after the build must run from
its source, not from the stale extension.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from actors import _core

ROOT = Path(__file__).resolve().parents[1]
COMPILED = _core.status()["core"] != "pure Python"


def _tree(tmp_path: Path) -> Path:
    """A copy of the package's sources, with a fake extension for each module."""
    root = tmp_path / "src"
    for pkg in ("actors", "cluster"):
        (root / pkg).mkdir(parents=True)
    for rel in _core.compilable(str(ROOT)) + list(_core.NOT_COMPILED):
        shutil.copy(ROOT / rel, root / rel)
        if (ROOT / (rel[:-3] + ".pxd")).exists():
            shutil.copy(ROOT / (rel[:-3] + ".pxd"), root / (rel[:-3] + ".pxd"))
    suffix = _core.importlib.machinery.EXTENSION_SUFFIXES[0]
    for rel in _core.compilable(str(root)):
        (root / (rel[:-3] + suffix)).write_bytes(b"")
    return root


def _manifest(root: Path) -> None:
    m = {rel: _core.source_hash(str(root / rel)) for rel in _core.compilable(str(root))}
    (root / "actors" / "_compiled.json").write_text(json.dumps(m))


def test_guard_trusts_only_a_matching_build(tmp_path):
    root = _tree(tmp_path)
    how = _core.decide(str(root), pure=False)
    assert set(how.values()) == {"source (compiled from other bytes)"}   # no manifest
    _manifest(root)
    how = _core.decide(str(root), pure=False)
    assert set(how.values()) == {"compiled"}
    assert "cluster.engine" in how and "actors.netisr" in how
    assert "actors._core" not in how and "actors" not in how
    # an edit after the build: that module, and only it (no other module
    # cimports the vnet's declarations), runs from source
    p = root / "actors" / "vnet.py"
    p.write_text(p.read_text() + "\n# edited\n")
    how = _core.decide(str(root), pure=False)
    assert how["actors.vnet"] == "source (compiled from other bytes)"
    assert all(v == "compiled" for k, v in how.items() if k != "actors.vnet")
    assert set(_core.decide(str(root), pure=True).values()) == {"source (NETCABAL_PURE)"}
    # an edit to a module others cimport takes them to source too
    p.write_text(p.read_text().replace("\n# edited\n", ""))
    assert set(_core.decide(str(root), pure=False).values()) == {"compiled"}
    p = root / "actors" / "ip_input.py"
    p.write_text(p.read_text() + "\n# edited\n")
    how = _core.decide(str(root), pure=False)
    assert how["actors.ip_input"] == "source (compiled from other bytes)"
    assert how["actors.proto_input"] == "source (cimports actors.ip_input, which runs from source)"
    for name in ("actors.netisr", "actors.nic"):        # through proto_input
        assert how[name].startswith("source (cimports ")
    assert how["actors.toeplitz"] == "compiled" and how["actors.mbuf"] == "compiled"
    p.write_text(p.read_text().replace("\n# edited\n", ""))
    # a module with no extension beside it is plain source
    (root / ("actors/ip_input" + _core.importlib.machinery.EXTENSION_SUFFIXES[0])).unlink()
    assert _core.decide(str(root), pure=False)["actors.ip_input"] == "source"


def test_guard_loads_the_source_of_a_stale_module():
    """In a process where one module's manifest entry is wrong, that module
    comes from its .py file; the rest as the build left them."""
    code = (
        "import json, sys\n"
        "from actors import _core\n"
        "real = _core.decide\n"
        "def decide(root=_core.ROOT, pure=None):\n"
        "    d = real(root, pure)\n"
        "    d['actors.ip_input'] = 'source (compiled from other bytes)'\n"
        "    return _core.propagate(d, root)\n"
        "_core.decide = decide\n"
        "_core._decided.clear()\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != '_SourceFirst']\n"
        "_core.install()\n"
        "import actors.ip_input, actors.netisr, actors.toeplitz\n"
        "print(json.dumps([actors.ip_input.__file__, actors.netisr.__file__,\n"
        "                  actors.toeplitz.__file__]))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    ip, nisr, toep = json.loads(out.stdout)
    assert ip.endswith("ip_input.py")
    assert nisr.endswith("netisr.py")       # it cimports ip_input (through proto_input)
    assert toep.endswith(".so") == COMPILED


def _metrics(scenario: str, tmp: Path, pure: bool, sets=()) -> bytes:
    env = dict(os.environ, NETCABAL_PURE="1" if pure else "0")
    out = tmp / ("pure" if pure else "compiled")
    cmd = [sys.executable, "-m", "cluster.cli", "run", str(ROOT / "scenarios" / scenario),
           "--out", str(out), "--json", "--set", "scenario.duration_ms=4"]
    for s in sets:
        cmd += ["--set", s]
    subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, check=True)
    info = json.loads((out / "run-info.json").read_text())
    assert info["core"] == ("pure Python" if pure else _core.status()["core"])
    return (out / "metrics.json").read_bytes()


@pytest.mark.skipif(not COMPILED, reason="this install runs the model from source only")
@pytest.mark.parametrize("scenario,sets", [
    ("quickstart.toml", ()),
    ("quickstart.toml", ("net.isr.dispatch=hybrid", "net.isr.bindthreads=0")),
    ("link-layer.toml", ()),
    ("netisr-pcbinfolock.toml", ()),
    ("netisr-wakeup.toml", ()),
])
def test_compiled_and_source_agree(tmp_path, scenario, sets):
    assert _metrics(scenario, tmp_path, False, sets) == _metrics(scenario, tmp_path, True, sets)
