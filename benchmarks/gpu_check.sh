#!/usr/bin/env bash
# The prepared GPU check, for a session lent a CUDA machine (issue 30, item 4). Run from the repository
# root there, with torchattacks' wheel in .whl/ and Fashion-MNIST's four files in data/fashion-mnist/
# (both carried: the machine has no network); results go to $OUT. Prepare and call, from this machine:
#   pip download torchattacks==3.5.1 --no-deps -d .whl
#   mkdir -p data/fashion-mnist && cp /usr/share/datasets/fashion-mnist/*.gz data/fashion-mnist/
#   device run: bash benchmarks/gpu_check.sh      (carry: .whl, data; timeout_s 600)
# In priority order, each stage time-boxed and its results packed into $OUT as soon as it ends, so a
# run cut off still returns them:
#   1. pytest -m gpu (the CUDA-graph step == the eager step; never yet shown passing)
#   2. the paper recipe (paper-mnist), timed: the goal is 60 s
#   3. robust-mnist-conv4-pgd (the shipped MNIST model's recipe: Madry PGD-10 on conv4) at 40 epochs
#      instead of 18 (its next lever: AutoAttack 92.5 %, the goal 93.0 %), exported (float16),
#      AutoAttack at eps 0.3 on the first 1,000 test images of the exported weights
#   4. robust-fashion-conv4-ema (the shipped Fashion-MNIST model's recipe) at 80 epochs instead of 40, the
#      same at eps 0.1 (its next lever: validation accuracy rose 86.14 -> 87.06 % over epochs 21-40)
# Training runs come back whole (optimizer state kept: `robustgen train --resume` continues a cut one
# on the CPU). DRY=1 runs every stage here on the CPU in miniature (a check of the script itself).
set -u
export PYTHONUNBUFFERED=1
O=${OUT:-/tmp/out}
mkdir -p "$O/models" "$O/reports"
START=$(date +%s)
BUDGET=${BUDGET:-540}   # seconds this script may use in all
left() { echo $((BUDGET - ($(date +%s) - START))); }
cap() { local l; l=$(( $(left) - ${2:-0} )); echo $(( l < $1 ? (l > 1 ? l : 1) : $1 )); }  # min(limit, time left - reserve)
stage() { echo; echo "=== $1 (t=$(($(date +%s) - START)) s)"; }
pack() {  # the run folders, split under 16 MB
  rm -f "$O"/runs.tar.*
  (cd "$RUNS" && tar cf - .) | split -b 15M -d - "$O/runs.tar."
}
RUNS=/tmp/runs
DEV=cuda
SMALL=()
N=1000
if [ "${DRY:-0}" = 1 ]; then  # the whole script in miniature on the CPU
  DEV=cpu; RUNS=$O/dry-runs; N=20
  SMALL=(--epochs 1 --set data.limit_train=256 --set data.val_size=200)
else
  "${PY:-python3}" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export ROBUSTGEN_DATA=$PWD/data
PY=${PY:-python3}
RG=("$PY" -m robustgen)
mkdir -p "$RUNS"

train() {  # NAME LIMIT [ARGS...]: train preset NAME on the device, time-boxed, then pack
  local name=$1 limit=$2 t0 rc; shift 2
  t0=$(date +%s)
  timeout "$limit" "${RG[@]}" train --config "$name" --device $DEV --runs-dir "$RUNS" --name "$name" --quiet "$@" "${SMALL[@]}"
  rc=$?
  echo "$name train wall $(($(date +%s) - t0)) s (rc $rc; 124: cut by the time box, finished epochs kept)"
  tail -n 3 "$RUNS"/*-"$name"/metrics.csv
  pack
}

measure() {  # NAME EPS: export the run (float16, test accuracy recorded), AutoAttack on the exported weights
  local name=$1 eps=$2 run
  run=$(ls -d "$RUNS"/*-"$name" 2>/dev/null | head -n 1)
  [ -n "$run" ] && [ -f "$run/checkpoint.pt" ] || { echo "$name: no checkpoint"; return; }
  timeout "$(cap 90)" "${RG[@]}" export --checkpoint "$run" --name "$name" --out "$O/models" || return
  "$PY" -c "import json, sys; m = json.load(open(sys.argv[1])); print('$name epoch', m['epoch'], 'test', m['test'])" \
    "$O/models/$name.json"
  local method=autoattack
  [ "${DRY:-0}" = 1 ] && method=pgd
  timeout "$(cap 150)" "${RG[@]}" attack --checkpoint "$O/models/$name.json" --method $method --eps "$eps" -n $N \
    --score confidence --sanity-n 0 --device $DEV --quiet --out "$O/reports/$name-autoattack-eps$eps"
}

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
  "$PY" -c "import torch, torchattacks, sklearn; print('torch', torch.__version__, 'torchattacks', torchattacks.__version__, 'sklearn', sklearn.__version__)"
  stage "1 pytest -m gpu"
  timeout "$(cap 150)" "$PY" -m pytest -q -m gpu tests/test_gpu.py -p no:cacheprovider
  stage "2 paper-mnist (goal: 60 s)"
  train paper-mnist "$(cap 75 400)"   # 250 epochs took 118 s on an H200 (2026-11-27): the rate is what counts
  stage "3 robust-mnist-conv4-pgd, 40 epochs"
  train robust-mnist-conv4-pgd "$(cap 240 200)" --epochs "${C4_EPOCHS:-40}"
  measure robust-mnist-conv4-pgd 0.3
  stage "4 robust-fashion-conv4-ema, 80 epochs"
  train robust-fashion-conv4-ema "$(cap 200 60)" --epochs "${FC4_EPOCHS:-80}"
  measure robust-fashion-conv4-ema 0.1
  stage "done"
  ls -la "$O" "$O/models"
} 2>&1 | tee "$O/log.txt"
