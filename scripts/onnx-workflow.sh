#!/usr/bin/env bash
# The ONNX workflow end to end on real data (docs/onnx.md): train a float CNN
# in PyTorch on Fashion-MNIST, export it to ONNX, sweep it on MPI ranks from
# its trained weights and, beside it, the same network from random weights at
# the same search and retraining schedule, report both fronts against uniform
# precision, export the imported front's best configuration as QDQ ONNX and
# run that file in ONNX Runtime over the test set.
#
# Usage: scripts/onnx-workflow.sh [OUT_DIR]      (default results/onnx-workflow)
# Needs the build (scripts/build.sh) and the install script's virtual
# environment (onnxruntime). Re-running resumes: an existing OUT/fashion.onnx
# is kept and the sweep runs only its unfinished trials.
# Settings (environment; the defaults are the run measured in the README):
#   FLOAT_EPOCHS=3 FLOAT_SUBSET=0 (all 60,000 images) TRAIN_SUBSET=8000 TEST_SUBSET=10000 SEARCH_EPOCHS=4
#   RETRAIN_EPOCHS=4 LR=0.02 LAMBDAS=0,0.001,0.003,0.01 SEEDS=1,2
#   BASELINES="2 3 4" EDMIPS_RANKS=$(nproc) EDMIPS_BINARY=build/src/edmips
#   EDMIPS_VENV=/opt/edmips-venv
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-$root/results/onnx-workflow}")
edmips=${EDMIPS_BINARY:-$root/build/src/edmips}
venv_python=${EDMIPS_VENV:-/opt/edmips-venv}/bin/python
python=("bash" "$root/scripts/python.sh")
for need in "$edmips" "$venv_python"; do
  if [[ ! -x $need ]]; then
    echo "onnx-workflow.sh: $need is missing: run scripts/install-deps.sh and scripts/build.sh first" >&2
    exit 2
  fi
done
mkdir -p "$out"
started=$SECONDS

# 1. The user's float network, trained in PyTorch and exported with its weights.
if [[ ! -s $out/fashion.onnx ]]; then
  /usr/bin/python3 "$root/scripts/train_fashion_onnx.py" "$out/fashion.onnx.part" \
    --epochs "${FLOAT_EPOCHS:-3}" --train-subset "${FLOAT_SUBSET:-0}" | tee "$out/float.json"
  mv "$out/fashion.onnx.part" "$out/fashion.onnx"
fi
echo "float network: $out/fashion.onnx ($(tail -n 1 "$out/float.json" 2>/dev/null || echo 'trained earlier'))"

# 2. One sweep, two models: the file's weights and random ones, same schedule.
"${python[@]}" - "$out/sweep.json" <<EOF
import json, sys
lambdas = [float(x) for x in "${LAMBDAS:-0,0.001,0.003,0.01}".split(",")]
seeds = [int(x) for x in "${SEEDS:-1,2}".split(",")]
def schedule(epochs):
    return {"epochs": epochs, "batch_size": 128, "lr": ${LR:-0.02}, "lr_step_epochs": max(1, epochs - 1)}
sweep = {
    "name": "onnx-workflow",
    "description": "scripts/onnx-workflow.sh: a Fashion-MNIST CNN trained in PyTorch, searched from its "
                   "weights and from scratch at the same schedule, against uniform baselines",
    "max_retries": 1,
    "base": {"dataset": {"name": "fashion-mnist", "path": "/usr/share/datasets/fashion-mnist",
                         "train_subset": ${TRAIN_SUBSET:-8000}, "test_subset": ${TEST_SUBSET:-10000}},
             "search": schedule(${SEARCH_EPOCHS:-4}), "train": schedule(${RETRAIN_EPOCHS:-4})},
    "axes": {"models": [{"onnx": "fashion.onnx", "init": "imported"},
                        {"onnx": "fashion.onnx", "init": "scratch"}],
             "complexity_penalty": lambdas,
             "bits": [{"weights": [1, 2, 3, 4], "activations": [2, 3, 4]}],
             "seeds": seeds},
    "baselines": [[int(b), int(b)] for b in "${BASELINES:-2 3 4}".split()],
}
json.dump(sweep, open(sys.argv[1], "w"), indent=2)
EOF
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun -np "${EDMIPS_RANKS:-$(nproc)}" --oversubscribe "$edmips" sweep "$out/sweep.json" --out "$out/sweep"
"$edmips" report "$out/sweep"

# 3. The imported front's best configuration (its highest mean top-1), exported.
read -r trial_dir top1 < <("${python[@]}" - "$out/sweep/pareto.json" <<'EOF'
import json, os, sys
report = json.load(open(sys.argv[1]))
by_id = {c["configuration_id"]: c for c in report["configurations"]}
fronts = [g for g in report["groups"] if g["kind"] == "search" and g["model"] == "fashion.onnx"]
best = max((by_id[i] for g in fronts for i in g["front"]), key=lambda c: c["top1_mean"])
trial = best["trials"][0]
print(os.path.join(trial["source"], "trials", trial["id"]), trial["top1"])
EOF
)
"$edmips" export "$trial_dir" --format qdq --out "$out/best-qdq.onnx"

# 4. The exported file in ONNX Runtime, over the same test images.
ort=$("$venv_python" "$root/analysis/onnx_check.py" ortop1 "$out/best-qdq.onnx" --limit "${TEST_SUBSET:-10000}")
echo "best imported configuration: $trial_dir"
echo "  edmips top-1 $top1 %, ONNX Runtime on $out/best-qdq.onnx: $ort"
echo "onnx-workflow.sh: done in $((SECONDS - started)) s; report in $out/sweep/report.md"
