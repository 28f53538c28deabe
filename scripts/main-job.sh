#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 machine (as root), builds, and runs
# the main job on the bundled default data (Fashion-MNIST from Debian).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/install-deps.sh"
bash "$root/scripts/build.sh"
out=${EDMIPS_OUT:-$root/results/fashion-quick-trial}
"$root/build/src/edmips" trial "$root/sweeps/trials/fashion-quick-trial.json" --out "$out"
echo "results in $out (result.json, allocation.json, history.json)"
