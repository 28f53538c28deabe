#!/usr/bin/env bash
# Fuzzes every input parser with libFuzzer (clang from Debian) under
# AddressSanitizer and UBSan: sweep files, trial configs, allocations,
# journal lines, IDX headers and CIFAR-10 batch sizes (fuzz/*.cpp). Seeds come
# from the repository's own examples; findings land in build-fuzz/findings/.
# Usage: scripts/fuzz.sh [RUNS_PER_HARNESS [HARNESS...]]
#   RUNS_PER_HARNESS: default 1000000; 0 = until stopped.
#   HARNESS: sweep_file trial_config allocation journal idx_header onnx_graph (default: all).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-1000000}
shift || true
harnesses=("$@")
[[ ${#harnesses[@]} -gt 0 ]] || harnesses=(sweep_file trial_config allocation journal idx_header onnx_graph)
if ! command -v clang++ > /dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a > /dev/null 2>&1; then
  echo "fuzz.sh: installing clang and its fuzzer runtime (Debian: clang, libclang-rt-14-dev)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends clang libclang-rt-14-dev
fi
out=$root/build-fuzz
mkdir -p "$out/findings"
# The harnesses and what they link come from CMake (fuzz/CMakeLists.txt):
# only edmips_plan (and edmips_onnx for the ONNX reader), no LibTorch, no
# MPI. Everything in them is instrumented; libFuzzer's main is linked to the
# harnesses alone.
sanitize="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
cmake -S "$root" -B "$out" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g $sanitize" -DEDMIPS_PLAN_ONLY=ON -DEDMIPS_FUZZERS=ON \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" > "$out/configure.log" \
  || { cat "$out/configure.log" >&2; exit 2; }
targets=()
for harness in "${harnesses[@]}"; do
  [[ -f $root/fuzz/fuzz_$harness.cpp ]] || { echo "fuzz.sh: no harness $harness" >&2; exit 2; }
  targets+=("fuzz_$harness")
done
cmake --build "$out" -j "$(nproc)" --target "${targets[@]}" > "$out/build.log" || { tail -40 "$out/build.log" >&2; exit 2; }
seed() {  # seed NAME FILES...: the harness's starting corpus
  local dir=$out/corpus/$1
  shift
  mkdir -p "$dir"
  for f in "$@"; do [[ -f $f ]] && cp "$f" "$dir/$(basename "$(dirname "$f")")-$(basename "$f")"; done
  return 0
}
seed sweep_file "$root"/sweeps/*.json "$root"/tests/analysis/fixture/sweep/sweep.json
seed trial_config "$root"/sweeps/trials/*.json
seed allocation "$root"/tests/analysis/fixture/sweep/trials/*/allocation.json "$root"/sweeps/allocations/*.json
seed journal "$root"/tests/analysis/fixture/sweep/journal.jsonl
mkdir -p "$out/corpus/idx_header"
for f in /usr/share/datasets/fashion-mnist/*.gz; do
  # head closes the pipe after 16 bytes, so gzip's SIGPIPE is expected.
  [[ -f $f ]] && { gzip -dc "$f" 2> /dev/null | head -c 16 > "$out/corpus/idx_header/$(basename "$f" .gz)" || true; }
done
printf '\x20\x4b\xd4\x01\x00\x00\x00\x00' > "$out/corpus/idx_header/cifar-size"  # 30730000 bytes
mkdir -p "$out/corpus/onnx_graph"
[[ -n $(ls "$out/corpus/onnx_graph") ]] || bash "$root/scripts/python.sh" "$root/fuzz/onnx_seeds.py" "$out/corpus/onnx_graph" > /dev/null
status=0
for harness in "${harnesses[@]}"; do
  binary=$out/fuzz/fuzz_$harness
  log=$out/$harness.log
  set +e
  max_len=4096
  [[ $harness != onnx_graph ]] || max_len=16384  # the seeds are 1-3 KB
  (cd "$out/findings" && "$binary" -runs="$runs" -max_len=$max_len -print_final_stats=1 \
      -artifact_prefix="$out/findings/$harness-" "$out/corpus/$harness" > "$log" 2>&1)
  code=$?
  set -e
  executions=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  echo "fuzz_$harness: exit $code, $executions executions ($log)"
  [[ $code -eq 0 ]] || status=1
done
exit $status
