#!/usr/bin/env bash
# The prepared GPU check, for a session lent a CUDA machine (run from the repository root there,
# with torchattacks' wheel in .whl/; results go to $OUT). In priority order, each stage time-boxed
# and its results packed into $OUT as soon as it ends, so a cut-off run still returns them:
#   1. pytest -m gpu (CUDA-graph step == eager step, with and without the inner attack)
#   2. benchmarks/cuda_check.py (CUDA vs CPU on the shipped robust-mnist model)
#   3. benchmarks/train_speed.py --device cuda
#   4. a full fast-mnist training run, timed, and its test accuracy
#   5. robust-mnist-wide (adversarial training of the wider preset), timed
#   6. paper-mnist (250 epochs), timed, in whatever time is left (--resume continues it elsewhere)
set -u
export PYTHONUNBUFFERED=1
O=${OUT:-/tmp/out}
mkdir -p "$O"
START=$(date +%s)
BUDGET=${BUDGET:-540}   # seconds this script may use in all
left() { echo $((BUDGET - ($(date +%s) - START))); }
stage() { echo; echo "=== $1 (t=$(($(date +%s) - START)) s)"; }
pack() {  # the run folders, optimizer state dropped, wide weights in float16; split under 16 MB
  python3 - <<'PY'
import pathlib, torch
for ck in pathlib.Path("/tmp/runs").glob("*/checkpoint.pt"):
    d = torch.load(ck, map_location="cpu", weights_only=True)
    if d.get("optimizer_state") is None and "stripped" in d.get("extra", {}):
        continue
    keep_opt = "paper" in ck.parent.name  # paper-mnist may need --resume on the CPU
    if not keep_opt:
        d["optimizer_state"] = None
    if "wide" in ck.parent.name:
        d["model_state"] = {k: v.half() if v.is_floating_point() else v for k, v in d["model_state"].items()}
    d.setdefault("extra", {})["stripped"] = True
    torch.save(d, str(ck) + ".small")
PY
  rm -f "$O"/runs.tar.*
  (cd /tmp/runs && tar cf - --exclude=checkpoint.pt --transform 's/checkpoint.pt.small$/checkpoint.pt/' .) \
    | split -b 15M -d - "$O/runs.tar."
}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
mkdir -p /tmp/runs
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, torchattacks, sklearn; print('torch', torch.__version__, 'torchattacks', torchattacks.__version__, 'sklearn', sklearn.__version__)"
  stage "1 pytest -m gpu"
  timeout 150 python3 -m pytest -q -m gpu tests/test_gpu.py -p no:cacheprovider
  stage "2 cuda_check"
  timeout 120 python3 benchmarks/cuda_check.py --json "$O/cuda_check.json"
  stage "3 train_speed"
  timeout 90 python3 benchmarks/train_speed.py --device cuda --repeats 3 --json "$O/train_speed.json"
  stage "4 fast-mnist"
  t0=$(date +%s)
  timeout 150 python3 -m robustgen train --config fast-mnist --device cuda --runs-dir /tmp/runs --name fast-mnist --quiet
  echo "fast-mnist train wall $(($(date +%s) - t0)) s"
  timeout 60 python3 -m robustgen eval --checkpoint /tmp/runs/*-fast-mnist --device cuda
  pack
  stage "5 robust-mnist-wide"
  t0=$(date +%s)
  timeout $(( $(left) - 60 )) python3 -m robustgen train --config robust-mnist-wide --device cuda --runs-dir /tmp/runs --name robust-mnist-wide --quiet
  rc=$?
  echo "robust-mnist-wide train wall $(($(date +%s) - t0)) s (rc $rc)"
  timeout 60 python3 -m robustgen eval --checkpoint /tmp/runs/*-robust-mnist-wide --device cuda
  pack
  stage "6 paper-mnist"
  t0=$(date +%s)
  [ "$(left)" -gt 60 ] && timeout $(( $(left) - 25 )) python3 -m robustgen train --config paper-mnist --device cuda --runs-dir /tmp/runs --name paper-mnist --quiet
  echo "paper-mnist train wall $(($(date +%s) - t0)) s"
  pack
  stage "done"
  ls -la "$O"
} 2>&1 | tee "$O/log.txt"
