#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 machine (as root), builds, and runs
# the whole test suite (CTest: Catch2 unit, integration and end-to-end tests).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# Each phase's wall time goes to the log, so a slow CI run shows where it went.
phase() { echo "run-tests.sh: $1 done at $SECONDS s"; }
bash "$root/scripts/install-deps.sh"
phase install
bash "$root/scripts/build.sh"
phase build
(cd "$root/build" && ctest --output-on-failure -j "$(nproc)")
phase "main suite"
# The unit and integration tests once more under AddressSanitizer + UBSan
# (build-asan/). EDMIPS_SKIP_SANITIZERS=1 leaves this out for a quick local run.
if [[ ${EDMIPS_SKIP_SANITIZERS:-0} != 1 ]]; then
  bash "$root/scripts/test-sanitizers.sh"
  phase sanitizers
fi
# The CUDA variant (a CUDA LibTorch 2.x with the fused CUDA quantizers) must
# keep compiling and linking; its GPU tests say "skipped" without a GPU.
if command -v nvcc > /dev/null || [[ -x /usr/local/cuda/bin/nvcc ]]; then
  bash "$root/scripts/build-cuda.sh"
  "$root/build-cuda/tests/edmips_tests" "[cuda],[quant]" --use-colour no
  phase "CUDA build"
else
  echo "run-tests.sh: no CUDA toolkit (nvcc): the CUDA build is not checked here"
fi
