#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 machine (as root), builds, and runs
# the whole test suite (CTest: Catch2 unit, integration and end-to-end tests).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/install-deps.sh"
bash "$root/scripts/build.sh"
(cd "$root/build" && ctest --output-on-failure -j "$(nproc)")
# The unit and integration tests once more under AddressSanitizer + UBSan
# (build-asan/). EDMIPS_SKIP_SANITIZERS=1 leaves this out for a quick local run.
if [[ ${EDMIPS_SKIP_SANITIZERS:-0} != 1 ]]; then
  bash "$root/scripts/test-sanitizers.sh"
fi
# The CUDA variant (a CUDA LibTorch 2.x with the fused CUDA quantizers) must
# keep compiling and linking; its GPU tests say "skipped" without a GPU.
if command -v nvcc > /dev/null || [[ -x /usr/local/cuda/bin/nvcc ]]; then
  bash "$root/scripts/build-cuda.sh"
  "$root/build-cuda/tests/edmips_tests" "[cuda],[quant]" --use-colour no
else
  echo "run-tests.sh: no CUDA toolkit (nvcc): the CUDA build is not checked here"
fi
