#!/usr/bin/env bash
# The whole report of a sweep: tables (pareto.csv, pareto.json, report.md)
# and plots (plots/*.png, *.svg) in the first DIR. Works on a sweep that is
# still running.   Usage: scripts/report.sh DIR [DIR...] [edmips pareto options]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ $# -lt 1 ]]; then
  echo "usage: scripts/report.sh SWEEP_DIR [SWEEP_DIR...] [--cost bitops|normalised_bits|weight_memory_bits]" >&2
  exit 2
fi
"${EDMIPS_BINARY:-$root/build/src/edmips}" pareto "$@"
"$root/scripts/python.sh" "$root/analysis/plots.py" "$1"
echo "report: $1/report.md"
