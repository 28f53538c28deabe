#!/usr/bin/env bash
# GoogLeNet at 224 and Inception-V3 at 299: our search step against our float
# step (`edmips bench`), and the released EdMIPS code's search step against
# torchvision's float step (microbench/released_step.py), on this machine.
# Usage: scripts/bench-released.sh RELEASED_CHECKOUT [STEPS]
#   RELEASED_CHECKOUT: a clone of github.com/zhaoweicai/EdMIPS (its models/
#   are copied into a temporary folder, never into this repository).
# Small batches (8 at 224, 4 at 299), 2 threads; the build is made first when missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
released=${1:?usage: scripts/bench-released.sh RELEASED_CHECKOUT [STEPS]}
steps=${2:-5}
[[ -f $released/models/mixgoogle.py ]] || { echo "bench-released.sh: $released has no models/mixgoogle.py" >&2; exit 2; }
[[ -x $root/build/src/edmips ]] || bash "$root/scripts/build.sh"
for spec in "googlenet 8 224" "inception_v3 4 299"; do
  read -r model batch size <<< "$spec"
  echo "== $model, batch $batch, ${size}x${size}, 2 threads"
  "$root/build/src/edmips" bench --model "$model" --batch "$batch" --size "$size" --classes 1000 \
    --steps "$steps" --warmup 1 --no-naive --threads 2 | grep -E '^\| (float|search)'
  bash "$root/scripts/python.sh" "$root/microbench/released_step.py" "$released" "$model" "$batch" "$size" \
    --steps "$steps" --threads 2 | tail -n 1
done
