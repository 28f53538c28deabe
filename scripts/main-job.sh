#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 machine (as root), builds, runs the
# main job on the bundled default data (Fashion-MNIST from Debian) and ends
# with its report: where mixed precision is above or below uniform precision
# at equal BitOps, the fronts, and the plots.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/install-deps.sh"
bash "$root/scripts/build.sh"
out=${EDMIPS_OUT:-$root/results/fashion-quick}
ranks=${EDMIPS_RANKS:-$(nproc)}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun -np "$ranks" --oversubscribe "$root/build/src/edmips" sweep "$root/sweeps/fashion-quick.json" --out "$out"
echo "results in $out (results.csv, journal.jsonl, trials/)"
"$root/build/src/edmips" report "$out"
