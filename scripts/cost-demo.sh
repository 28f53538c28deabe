#!/usr/bin/env bash
# The cost-model demonstration (docs/costs.md): regenerates the roofline
# table for resnet20 on Fashion-MNIST when missing, runs
# sweeps/fashion-costs.json on every core (one MPI rank per core; re-running
# resumes), then the report in the table's cost (every trial, the BitOps
# searches and uniform baselines included, priced in the table) and in BitOps.
# Usage: scripts/cost-demo.sh [OUT_DIR]   (default results/fashion-costs)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/results/fashion-costs}
table=$root/sweeps/tables/roofline-resnet20-fashion.json
[[ -x $root/build/src/edmips ]] || bash "$root/scripts/build.sh"
if [[ ! -f $table ]]; then
  template=$(mktemp --suffix=.json)
  "$root/build/src/edmips" cost-table resnet20 --out "$template" --force
  bash "$root/scripts/python.sh" "$root/scripts/roofline_table.py" "$template" "$table"
  rm -f "$template"
fi
ranks=${EDMIPS_RANKS:-$(nproc)}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
start=$(date +%s)
mpirun -np "$ranks" --oversubscribe "$root/build/src/edmips" sweep "$root/sweeps/fashion-costs.json" --out "$out"
echo "sweep took $(( $(date +%s) - start )) s on $ranks ranks ($(nproc) cores)"
"$root/build/src/edmips" report "$out" --cost table --cost-table "$table" --out "$out/table-cost"
"$root/build/src/edmips" pareto "$out" --cost bitops --out "$out/bitops"
