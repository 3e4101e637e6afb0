"""Build of dynamo_ext._C with torch.utils.cpp_extension.

CppExtension by default; CUDAExtension when torch.cuda.is_available() (and a
CUDA toolkit is found) or when FORCE_CUDA=1. Torch must be importable at build
time, so install with `pip install --no-build-isolation .` (see README.md).
"""
import glob
import os

import torch
from setuptools import setup
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

ROOT = os.path.dirname(os.path.abspath(__file__))


def _sources(pattern):
    return sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, pattern), recursive=True))


def _use_cuda():
    if os.environ.get("FORCE_CUDA", "0") == "1":
        return True
    return torch.cuda.is_available() and CUDA_HOME is not None


def _extension():
    with_cuda = _use_cuda()
    sources = _sources("csrc/python_module.cpp") + _sources("csrc/ops/*.cpp") + _sources("csrc/ops/cpu/*.cpp")
    macros = [("DYNAMO_EXT_TORCH_VERSION", f'"{torch.__version__}"')]
    # no -std flag: torch.utils.cpp_extension passes the standard the installed torch needs
    # -fno-trapping-math lets GCC vectorise the branch-free cell math (csrc/cell_math.h)
    # -fopenmp-simd honours `#pragma omp simd reduction` (vectorised dot products in csrc/ops/small_linalg.h
    # and the fixed-point residuals) without linking OpenMP
    # -fopenmp: ATen's at::parallel_for is a header template whose `#pragma omp parallel` is compiled
    # into this extension; without the flag every parallel_for here runs on one thread. The
    # extension then shares torch's OpenMP runtime (the libgomp.so.1 that torch loads first).
    cxx_flags = ["-O3", "-fno-trapping-math", "-fopenmp-simd", "-fopenmp"]
    link_flags = ["-fopenmp"]
    if not with_cuda:
        return CppExtension("dynamo_ext._C", sources, define_macros=macros,
                            extra_compile_args={"cxx": cxx_flags}, extra_link_args=link_flags)
    macros.append(("DYNAMO_EXT_WITH_CUDA", None))
    return CUDAExtension(
        "dynamo_ext._C",
        sources + _sources("csrc/ops/cuda/*.cu"),
        define_macros=macros,
        extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3"]},
        extra_link_args=link_flags,
    )


setup(
    ext_modules=[_extension()],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
)
