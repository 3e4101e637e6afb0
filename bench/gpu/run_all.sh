#!/usr/bin/env bash
# Every GPU check of dynamo_ext in one call, everything written under one folder.
# Quoted in docs/performance.md.
#
#   bash bench/gpu/run_all.sh [OUT]              on a machine with a CUDA device (default OUT: $OUT or gpu-results)
#   bash bench/gpu/run_all.sh --dry-run [OUT]    on the CPU, at toy sizes: keeps this script runnable
#                                                (tests/test_gpu_script.py runs it)
#
# 1. build: FORCE_CUDA=1, TORCH_CUDA_ARCH_LIST (default 9.0, Hopper), the package in place with the
#    machine's torch (dry run: the installed build is used); WHEELS=<folder> installs missing Python
#    dependencies from carried wheels first (pip --no-index);
# 2. pytest -m cuda: the CUDA tests (the CPU-vs-CUDA comparisons of both ops);
# 3. compute-sanitizer memcheck and racecheck over bench/gpu/small_calls.py (small calls of every op,
#    both newton_fixed_points paths), where compute-sanitizer is on the PATH;
# 4. bench/gpu/kernels.py: the ops against cuDNN (torch.nn.GRU/RNN), the eager reference,
#    torch.compile and (hidden_map_loss) the per-model loop, equivalence first;
# 5. bench/bench_scale.py on the device: cost against the population size N.
# Each step's log is OUT/<step>.log; OUT/summary.txt lists each step's exit status. A failing step
# does not stop the others; the script exits 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
DRY=0
if [ "${1:-}" = "--dry-run" ]; then DRY=1; shift; fi
OUT=${1:-${OUT:-gpu-results}}
mkdir -p "$OUT"
: > "$OUT/summary.txt"
FAILED=0
step() {  # step NAME COMMAND...: run, log, record the status
  local name=$1; shift
  local t0=$(date +%s)
  "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "$name rc=$rc seconds=$(( $(date +%s) - t0 ))" | tee -a "$OUT/summary.txt"
  [ $rc -eq 0 ] || FAILED=1
}
PY=${PYTHON:-python3}
if [ $DRY = 1 ]; then
  DEVICE=cpu
  SIZES="4 8"; STEPS=20; CONFIGS="S"; DIMS="16"; NOCOMPILE=--no-compile; DSA=0
else
  DEVICE=cuda
  SIZES="16 64 256 1024"; STEPS=2000; CONFIGS="S M L"; DIMS="64 128 256"; NOCOMPILE=; DSA=0
fi
{ date; uname -a; command -v nvidia-smi > /dev/null && nvidia-smi; $PY -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())'; } > "$OUT/environment.txt" 2>&1

if [ $DRY = 0 ]; then
  if [ -n "${WHEELS:-}" ]; then step wheels $PY -m pip install --no-index --find-links "$WHEELS" "$WHEELS"/*.whl; fi
  step build env FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}" MAX_JOBS="${MAX_JOBS:-16}" \
    $PY -m pip install --no-build-isolation --no-deps -e .
fi
step import $PY -c 'import torch, dynamo_ext; from dynamo_ext._extension import cuda_kernels_registered; print("WITH_CUDA", dynamo_ext.WITH_CUDA, "cuda kernels registered", cuda_kernels_registered())'
step pytest_cuda $PY -m pytest -m cuda -q -rs tests/test_ops.py tests/test_fixed_points.py tests/test_distributed.py
step small_calls $PY bench/gpu/small_calls.py --device $DEVICE
if command -v compute-sanitizer > /dev/null 2>&1 && [ $DRY = 0 ]; then
  step memcheck compute-sanitizer --tool memcheck --error-exitcode 1 $PY bench/gpu/small_calls.py --device cuda
  step racecheck compute-sanitizer --tool racecheck --error-exitcode 1 $PY bench/gpu/small_calls.py --device cuda
else
  echo "memcheck skipped (no compute-sanitizer, or dry run)" | tee -a "$OUT/summary.txt"
fi
step kernels $PY bench/gpu/kernels.py --device $DEVICE --configs $CONFIGS --dims $DIMS $NOCOMPILE --out "$OUT/kernels.json"
step bench_scale $PY bench/bench_scale.py --device $DEVICE --sizes $SIZES --fit-steps $STEPS --dsa-pairs $DSA \
  --out "$OUT/bench-scale.json"
exit $FAILED
