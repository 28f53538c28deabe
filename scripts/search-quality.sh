#!/usr/bin/env bash
# The search-quality benchmark (README "Search quality"): runs
# sweeps/fashion-quality.json on every core (one MPI rank per core), then the
# Pareto report with its dominance table and plots. Re-running resumes.
# Usage: scripts/search-quality.sh [OUT_DIR]   (default results/fashion-quality)
# EDMIPS_RANKS sets the rank count; the build is made first when missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/results/fashion-quality}
[[ -x $root/build/src/edmips ]] || bash "$root/scripts/build.sh"
ranks=${EDMIPS_RANKS:-$(nproc)}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
start=$(date +%s)
mpirun -np "$ranks" --oversubscribe "$root/build/src/edmips" sweep "$root/sweeps/fashion-quality.json" --out "$out"
echo "sweep took $(( $(date +%s) - start )) s on $ranks ranks ($(nproc) cores)"
"$root/build/src/edmips" report "$out"
