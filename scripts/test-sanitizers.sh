#!/usr/bin/env bash
# Builds EdMIPS-Sweep with AddressSanitizer and UBSan into build-asan/ and
# runs the unit and integration tests there (CI runs this after the main
# suite). Leak checking is off: Open MPI and LibTorch keep allocations until
# exit by design. The Slurm, packaging and tmpfs tests, which exercise the
# system rather than our memory use, run in the main suite only, and so do the
# two search-quality tests on real Fashion-MNIST (10 minutes of training in
# the main suite; the same trial code runs here in the shorter trial tests).
# Usage: scripts/test-sanitizers.sh [extra ctest options]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cmake -S "$root" -B "$root/build-asan" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEDMIPS_SANITIZE=ON \
  -DEDMIPS_BUILD_BENCHMARKS=OFF
cmake --build "$root/build-asan" -j "$(nproc)"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# Tests that only chain what other tests cover (the ONNX workflow script) say
# "skipped" here and run in the main suite.
export EDMIPS_SANITIZED=1
cd "$root/build-asan"
ctest --output-on-failure -j "$(nproc)" -E '^(slurm|packaging|integration\.faults|on real Fashion-MNIST)' "$@"
