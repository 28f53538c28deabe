#!/usr/bin/env bash
# On a machine with an NVIDIA GPU, a CUDA toolkit and PyTorch (or a LibTorch
# archive: set EDMIPS_TORCH_CMAKE_PREFIX): builds the CUDA variant
# (scripts/build-cuda.sh), runs the CUDA tests, a 2-rank sweep that shares
# the GPU, and the GPU benchmark, and prints the tables for the README.
# Usage: scripts/gpu-check.sh [extra cmake -D options for build-cuda.sh]
# EDMIPS_GPU_CHECK_OUT: where logs and tables go (default build-cuda/gpu-check);
# EDMIPS_FASHION_MNIST: the Fashion-MNIST folder for the sweep (default Debian's).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${EDMIPS_GPU_CHECK_OUT:-$root/build-cuda/gpu-check}
if [[ -z ${EDMIPS_TORCH_CMAKE_PREFIX:-} ]] && python3 -c 'import torch' 2>/dev/null; then
  EDMIPS_TORCH_CMAKE_PREFIX=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
  export EDMIPS_TORCH_CMAKE_PREFIX
fi
export EDMIPS_CUDA_ARCHITECTURES=${EDMIPS_CUDA_ARCHITECTURES:-90}
mkdir -p "$out"
step() {  # step NAME TIMEOUT_S COMMAND...: runs, logs to $out/NAME.log, reports the status
  local name=$1 limit=$2
  shift 2
  local start status=0
  start=$(date +%s)
  timeout "$limit" "$@" > "$out/$name.log" 2>&1 || status=$?
  echo "== $name: exit $status after $(( $(date +%s) - start )) s"
  tail -n 40 "$out/$name.log"
  return 0
}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
step build 420 bash "$root/scripts/build-cuda.sh" "$@"
bin=$root/build-cuda/src/edmips
step tests 240 "$root/build-cuda/tests/edmips_tests" "[cuda],[quant]" --use-colour no
data=${EDMIPS_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
cat > "$out/sweep.json" <<JSON
{"name": "gpu-shared", "base": {"device": "cuda",
  "dataset": {"name": "fashion-mnist", "path": "$data", "train_subset": 4000, "test_subset": 2000},
  "model": {"name": "resnet20"}, "search": {"epochs": 2, "batch_size": 128}, "train": {"epochs": 1, "batch_size": 128}},
 "axes": {"complexity_penalty": [0.0, 0.001], "seeds": [1]}, "baselines": [[2, 2]]}
JSON
if [[ -d $data ]]; then
  step sweep 180 env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
    mpirun -np 2 --oversubscribe -x LD_LIBRARY_PATH "$bin" sweep "$out/sweep.json" --out "$root/build-cuda/gpu-sweep"
fi
step bench-resnet20 240 "$bin" bench --device cuda --model resnet20 --batch 128 --size 32 --steps 20
step bench-resnet18 300 "$bin" bench --device cuda --model resnet18 --batch 256 --size 224 --classes 1000 \
  --steps 10 --no-naive
