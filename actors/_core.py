"""The compiled core, and the guard that keeps it true to the source.

netcabal's model is plain Python and runs as such.  At install time
setup.py may also compile the model's modules (every ``actors/*.py`` but this
one and ``__init__``, and ``cluster/engine.py``) with Cython into extension
modules beside their sources.  The source is compiled as it is; for the hot
classes (the actors, the kernel thread, the cache view, the lock, the
protocol input, the pcb, the mbuf) an augmenting ``.pxd`` beside the module
tells Cython to make the class an extension type - its fields in a C
struct, its methods called in C by compiled callers, a few locals C
integers - which the plain-Python run never reads.  The result is about
1.8 times as fast, with byte-identical results (tests/test_compiled.py
runs five scenarios both ways and compares the bytes of metrics.json).  The
build writes ``actors/_compiled.json``: for each module it compiled, the
SHA-256 of the source it compiled (the .py and its .pxd).

Python prefers an extension module to a source file of the same name, so an
edited source would silently run stale compiled code.  This guard prevents
that: a finder placed first on ``sys.meta_path`` (by ``actors/__init__``,
before any model module is imported) loads a module from its ``.py`` source
whenever its compiled twin was built from other bytes, when there is no
manifest, or when ``NETCABAL_PURE=1`` is set; otherwise it lets Python load the
compiled module.  A compiled module that cimports another (its .pxd names
the other's extension types or C functions) needs that one compiled too, so
it follows it to source (`propagate`).  ``status()`` says which modules run
compiled (recorded in run-info.json and printed by ``netcabal bench``).

Never compiled itself, and nothing here knows about Ray.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MANIFEST = os.path.join(ROOT, "actors", "_compiled.json")
NOT_COMPILED = ("actors/__init__.py", "actors/_core.py")
EXTRA = ("cluster/engine.py",)


def compilable(root: str = ROOT) -> list:
    """The modules setup.py compiles, as paths relative to `root`."""
    mods = sorted(f"actors/{f}" for f in os.listdir(os.path.join(root, "actors"))
                  if f.endswith(".py") and f"actors/{f}" not in NOT_COMPILED)
    return mods + list(EXTRA)


def source_hash(path: str) -> str:
    """SHA-256 of a module's source: the .py file, and the .pxd beside it if
    there is one (Cython's augmenting declarations: C types for a class's
    fields and a method's locals, used only when compiling)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    pxd = path[:-3] + ".pxd"
    if os.path.exists(pxd):
        with open(pxd, "rb") as f:
            h.update(b"\0pxd\0" + f.read())
    return h.hexdigest()


def module_name(rel: str) -> str:
    return rel[:-3].replace("/", ".")


def _extension(root: str, rel: str) -> str | None:
    """The compiled twin of `rel` beside it, if there is one."""
    base = os.path.join(root, rel[:-3])
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        if os.path.exists(base + suffix):
            return base + suffix
    return None


def decide(root: str = ROOT, pure: bool | None = None) -> dict:
    """module name -> "compiled" | "source" | the reason it runs from source."""
    if pure is None:
        pure = os.environ.get("NETCABAL_PURE", "") not in ("", "0")
    try:
        with open(os.path.join(root, "actors", "_compiled.json")) as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        manifest = {}
    out = {}
    for rel in compilable(root):
        name = module_name(rel)
        if _extension(root, rel) is None:
            out[name] = "source"
        elif pure:
            out[name] = "source (NETCABAL_PURE)"
        elif manifest.get(rel) != source_hash(os.path.join(root, rel)):
            out[name] = "source (compiled from other bytes)"
        else:
            out[name] = "compiled"
    return propagate(out, root)


_CIMPORT = re.compile(r"^\s*(?:from\s+(actors\.\w+)\s+cimport|cimport\s+(actors\.\w+))", re.M)


def cimports(root: str, rel: str) -> list:
    """The model modules whose C declarations `rel`'s .pxd cimports."""
    pxd = os.path.join(root, rel[:-3] + ".pxd")
    try:
        with open(pxd) as f:
            text = f.read()
    except OSError:
        return []
    return sorted({a or b for a, b in _CIMPORT.findall(text)})


def propagate(how: dict, root: str = ROOT) -> dict:
    """A compiled module that cimports one running from source runs from
    source too: its C calls and type checks need the other's compiled form
    (an edited ip_input.py takes proto_input, nic and netisr with it)."""
    deps = {module_name(rel): cimports(root, rel) for rel in compilable(root)}
    changed = True
    while changed:
        changed = False
        for name, ds in deps.items():
            if how.get(name) != "compiled":
                continue
            off = next((d for d in ds if how.get(d, "compiled") != "compiled"), None)
            if off is not None:
                how[name] = f"source (cimports {off}, which runs from source)"
                changed = True
    return how


class _SourceFirst(importlib.abc.MetaPathFinder):
    """Loads the listed modules from their .py source."""

    def __init__(self, paths: dict):
        self.paths = paths      # module name -> source path

    def find_spec(self, fullname, path=None, target=None):
        p = self.paths.get(fullname)
        if p is None:
            return None
        return importlib.util.spec_from_file_location(fullname, p)


_decided: dict = {}


def install() -> None:
    """Place the guard (once per process), before any model module loads."""
    if _decided:
        return
    _decided.update(decide())
    src = {n: os.path.join(ROOT, n.replace(".", "/") + ".py")
           for n, how in _decided.items() if how != "compiled"}
    if any(_extension(ROOT, n.replace(".", "/") + ".py") for n in src):
        sys.meta_path.insert(0, _SourceFirst(src))


def status() -> dict:
    """What runs compiled: {"core": "compiled" | "pure Python" | "mixed", "modules": {...}}."""
    how = dict(_decided) or decide()
    n = sum(1 for v in how.values() if v == "compiled")
    core = "compiled" if n == len(how) else "pure Python" if n == 0 else "mixed"
    return {"core": core, "modules": dict(sorted(how.items()))}
