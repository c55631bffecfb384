"""Build step: compile the model's modules with Cython (optional).

The model is plain Python and runs as such; compiling the same source with
Cython (with the .pxd declarations beside the modules) makes it about 1.6
times as fast, with identical results (see actors/_core.py, and its guard
that keeps compiled modules true to their source).  NETCABAL_PURE=1 at install time skips compiling; so does a machine
without Cython or a C compiler (the build then warns and goes on).
Everything else about the package is in pyproject.toml.
"""

import json
import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from actors._core import compilable, source_hash  # noqa: E402

# annotation_typing off: an annotation must not give a variable a C type
# (bytes indexing would yield C chars, whose shifts overflow where Python
# ints do not) - compiled code keeps Python semantics exactly.  C types come
# only from the .pxd files beside the modules; nonecheck: a None where a
# .pxd declares an extension type raises AttributeError, as plain Python
# would, instead of crashing.
DIRECTIVES = {"language_level": 3, "binding": True, "emit_code_comments": False,
              "annotation_typing": False, "nonecheck": True}


def extensions():
    if os.environ.get("NETCABAL_PURE", "") not in ("", "0"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("netcabal: Cython not found, the model runs as pure Python", file=sys.stderr)
        return []
    # force: C regenerated from the source every build (cythonize would keep
    # C made under other directives)
    return cythonize(compilable("."), compiler_directives=DIRECTIVES, quiet=True,
                     nthreads=os.cpu_count() or 1, force=True)


class BuildExt(build_ext):
    """build_ext in parallel, then the manifest of what was compiled from what."""

    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1

    def run(self):
        try:
            super().run()
        except Exception as e:  # noqa: BLE001 - no compiler: run from source
            print(f"netcabal: compiling the model failed ({e}); it runs as pure Python",
                  file=sys.stderr)
            return
        rels = [e.sources[0][:-2] + ".py" for e in self.extensions]
        manifest = {r: source_hash(r) for r in sorted(rels)}
        dirs = ["actors"] if self.inplace or getattr(self, "editable_mode", False) else []
        dirs.append(os.path.join(self.build_lib, "actors"))
        for d in dirs:
            if os.path.isdir(d):
                with open(os.path.join(d, "_compiled.json"), "w") as f:
                    json.dump(manifest, f, indent=1, sort_keys=True)
                    f.write("\n")


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
