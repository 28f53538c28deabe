#!/usr/bin/env bash
# The whole report of a sweep: `edmips report` (tables: pareto.csv,
# pareto.json, report.md; plots: plots/*.png, *.svg) in the first DIR. Works
# on a sweep that is still running. Kept for scripts written before
# `edmips report` existed.   Usage: scripts/report.sh DIR [DIR...] [options]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
exec "${EDMIPS_BINARY:-$root/build/src/edmips}" report "$@"
