#!/usr/bin/env bash
# Configures and builds EdMIPS-Sweep into build/ (Release, Ninja, both cores).
# Usage: scripts/build.sh [extra cmake -D options]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEDMIPS_REQUIRE_ONNX=ON "$@"
cmake --build "$root/build" -j "$(nproc)"
