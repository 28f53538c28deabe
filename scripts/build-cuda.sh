#!/usr/bin/env bash
# Builds EdMIPS-Sweep against a CUDA LibTorch 2.x into build-cuda/, with the
# fused CUDA quantizers (src/quant/fused_kernels_cuda.cu). Needs a CUDA
# toolkit (nvcc) of the LibTorch's CUDA major version.
#   EDMIPS_TORCH_CMAKE_PREFIX  LibTorch's CMake prefix, e.g. on a GPU node
#                              $(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
#                              or LIBTORCH_DIR/share/cmake of a LibTorch archive.
#   otherwise                  PyPI's torch==$EDMIPS_TORCH_VERSION (default 2.11.0, CUDA 13.0) is
#                              installed once, with its NVIDIA libraries, under /opt/edmips.
#   EDMIPS_CUDA_ARCHITECTURES  default "80;90" (A100, H100/H200).
# Usage: scripts/build-cuda.sh [extra cmake -D options]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=${EDMIPS_TORCH_VERSION:-2.11.0}
prefix=${EDMIPS_TORCH_CMAKE_PREFIX:-}
nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
if [[ ! -x $nvcc ]]; then
  echo "build-cuda.sh: no nvcc (CUDA toolkit) found; the CUDA build needs one" >&2
  exit 3
fi
if [[ -z $prefix ]]; then
  target=/opt/edmips/torch-$version
  if [[ ! -f $target/torch/share/cmake/Torch/TorchConfig.cmake ]]; then
    echo "build-cuda.sh: installing torch==$version (CUDA LibTorch and its NVIDIA libraries) into $target"
    rm -rf "$target.partial"
    # Only the files are used (headers, libraries, CMake config), never the
    # Python module; Debian's pip (python3-pip) installs into a folder of its own.
    /usr/bin/python3 -m pip install --quiet --no-compile --disable-pip-version-check --target "$target.partial" \
      --only-binary=:all: "torch==$version"
    mv "$target.partial" "$target"
  fi
  prefix=$target/torch/share/cmake
fi
cmake -S "$root" -B "$root/build-cuda" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CUDA_COMPILER="$nvcc" \
  -DCMAKE_CUDA_ARCHITECTURES="${EDMIPS_CUDA_ARCHITECTURES:-80;90}" -DEDMIPS_BUILD_BENCHMARKS=OFF "$@"
cmake --build "$root/build-cuda" -j "$(nproc)"
