"""Build the compiled kernels: ``src/*.pyx`` -> ``medfast/_*.so``.

OpenMP is used when the compiler supports it (``-fopenmp``); otherwise the
kernels are built single-threaded and ``medfast.show_config()`` says so.
Set ``MEDFAST_NO_OPENMP=1`` to force the single-threaded build.
"""
import os
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup


def compiler_supports_openmp() -> bool:
    """Compile and link a tiny OpenMP program to see whether -fopenmp works."""
    if os.environ.get("MEDFAST_NO_OPENMP"):
        return False
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "omp.c"
        src.write_text("#include <omp.h>\nint main(void){return omp_get_max_threads() < 1;}\n")
        cmd = cc.split() + ["-fopenmp", str(src), "-o", str(Path(tmp) / "omp")]
        try:
            return subprocess.run(cmd, capture_output=True).returncode == 0
        except OSError:
            return False


OPENMP = compiler_supports_openmp()
if not OPENMP:
    print("medfast: compiler has no OpenMP; building single-threaded kernels",
          file=sys.stderr)

# -ffp-contract=off: no fused multiply-add, so every rounding step matches
# scipy's (bit-identical results). No -march=native: wheels run anywhere.
compile_args = ["-O3", "-ffp-contract=off"] + os.environ.get("MEDFAST_CFLAGS", "").split()
link_args = []
if OPENMP:
    compile_args.append("-fopenmp")
    link_args.append("-fopenmp")

extensions = [
    Extension(
        f"medfast.{path.stem}",
        [str(path)],
        include_dirs=[np.get_include(), "src"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
    for path in sorted(Path("src").glob("*.pyx"))
]

setup(ext_modules=cythonize(extensions, language_level=3, quiet=True))
