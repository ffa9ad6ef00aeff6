#!/usr/bin/env bash
# Measure a trained candidate for a recommended model the way issue 30's ship rule reads it
# (robustgen.pretrained.RECOMMENDED: beat the shipped model on AutoAttack and on the per-input worst
# case with `confidence`), one step after another so the CPU never idles between them:
#
#   benchmarks/candidate_eval.sh RUN NAME EPS [EXPORT_DIR]
#
#   1. export RUN as NAME (float16) into EXPORT_DIR (default /tmp/robustgen-candidates)
#   2. clean test accuracy:            reports/NAME/eval-test.{md,json}
#   3. averaged vs trained weights:    reports/benchmarks/ema_gain_NAME.json   (only for train.ema runs)
#   4. AutoAttack in bfloat16, a screen (about half of float32's time), skipped with SCREEN=no (when the
#      float32 figure is wanted anyway and time is short):
#                                      reports/NAME/attack-autoattack-bf16-epsEPS-n1000/
#   5. the `strong` set without AutoAttack, every attack on every input, bfloat16 (Square keeps float32),
#      or float32 with STRONG_PRECISION=float32 (as the recommended Fashion-MNIST row was measured):
#                                      reports/NAME/attack-strong-bf16-confidence-epsEPS-n1000/
#                                      (float32: reports/NAME/attack-strong-confidence-epsEPS-n1000/)
#   6. AutoAttack in float32 (the figure the goals name):
#                                      reports/NAME/attack-autoattack-epsEPS-n1000/
#   7. the worst case over 5 and 6:    reports/benchmarks/union_worst_case_NAME.json
#
# Every attack runs on the first 1,000 test images (the goals' N for AutoAttack; for Fashion-MNIST's
# worst case they ask for 500, of which these are a superset). bfloat16 passes can weaken an attack
# (docs/robustness.md): the screen in 4 says early whether 6 is worth its time, and 5's sanity checks
# show where bfloat16 cost the attack something.
#
# A step whose output exists is skipped (robustgen never overwrites a report), and an attack whose
# folder holds no detection.md yet is continued with `robustgen attack --resume`, so a run cut by a
# session end goes on where it stopped. Each step's wall time goes to reports/NAME/timings.txt.
#
# To ship a candidate that passes: copy EXPORT_DIR/NAME.{pt,json} into robustgen/pretrained/, name it in
# RECOMMENDED, and record its figures for `robustgen models` with
#   python benchmarks/record_measured.py NAME --autoattack reports/NAME/attack-autoattack-epsEPS-n1000 \
#       --worst-case reports/benchmarks/union_worst_case_NAME.json
set -euo pipefail
if [ $# -lt 3 ]; then
    sed -n '5,6p' "$0" | sed 's/^# *//' >&2
    exit 2
fi
RUN=$1 NAME=$2 EPS=$3 EXPORT=${4:-/tmp/robustgen-candidates}
[[ $EPS =~ ^[0-9]*\.?[0-9]+$ ]] || { echo "candidate_eval.sh: EPS is not a number: $EPS" >&2; exit 2; }
[ -e "$RUN" ] || { echo "candidate_eval.sh: no run $RUN" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
RG=${ROBUSTGEN:-robustgen}
PY=${PYTHON:-python}
SP=${STRONG_PRECISION:-bfloat16}
[[ $SP == bfloat16 || $SP == float32 ]] || { echo "candidate_eval.sh: STRONG_PRECISION is not bfloat16 or float32: $SP" >&2; exit 2; }
SCREEN=${SCREEN:-yes}
[[ $SCREEN == yes || $SCREEN == no ]] || { echo "candidate_eval.sh: SCREEN is not yes or no: $SCREEN" >&2; exit 2; }
OUT=$ROOT/reports/$NAME
MODEL=$EXPORT/$NAME.json
mkdir -p "$OUT" "$ROOT/reports/benchmarks"

step() {  # step NAME OUTPUT COMMAND...: run COMMAND unless OUTPUT exists, and log its wall time
    local label=$1 target=$2
    shift 2
    if [ -e "$target" ]; then
        echo "skip $label: $target exists"
        return
    fi
    if [[ $target == */detection.md && -d $(dirname "$target") ]]; then  # an attack cut short
        set -- $RG attack --resume "$(dirname "$target")" --quiet
        label="$label (resumed)"
    fi
    local t0=$SECONDS
    echo "$(date -u +%FT%TZ) start $label"
    "$@"
    echo "$label $((SECONDS - t0)) s" >> "$OUT/timings.txt"
}

strong="pgd,apgd,square,adaptive-pgd,selective-pgd,orthogonal-pgd,guarded-apgd"
AA="$OUT/attack-autoattack-eps$EPS-n1000"
AA16="$OUT/attack-autoattack-bf16-eps$EPS-n1000"
TAG=-bf16
if [ "$SP" = float32 ]; then TAG=""; fi
STRONG="$OUT/attack-strong$TAG-confidence-eps$EPS-n1000"

step export "$MODEL" $RG export --checkpoint "$RUN" --name "$NAME" --out "$EXPORT"
step eval "$OUT/eval-test.json" $RG eval --checkpoint "$MODEL" --out "$OUT"
if $PY -c "import sys, tomllib; sys.exit(0 if tomllib.load(open(sys.argv[1], 'rb'))['train'].get('ema') else 1)" \
        "$RUN/config.toml"; then
    step ema-gain "$ROOT/reports/benchmarks/ema_gain_$NAME.json" $PY "$HERE/ema_gain.py" --run "$RUN" \
        --attacks pgd,apgd --eps "$EPS" --n 1000 --precision bfloat16 --json "$ROOT/reports/benchmarks/ema_gain_$NAME.json"
fi
if [ "$SCREEN" = yes ]; then
    step autoattack-bf16 "$AA16/detection.md" $RG attack --checkpoint "$MODEL" --method autoattack --precision bfloat16 \
        --eps "$EPS" -n 1000 --score confidence --sanity-n 0 --quiet --out "$AA16"
fi
step "strong-$SP" "$STRONG/detection.md" $RG attack --checkpoint "$MODEL" --method "$strong" --full --precision "$SP" \
    --eps "$EPS" -n 1000 --score confidence --targets untargeted --queries 1000 --sanity-n 100 --quiet --out "$STRONG"
step autoattack "$AA/detection.md" $RG attack --checkpoint "$MODEL" --method autoattack --eps "$EPS" -n 1000 \
    --score confidence --sanity-n 0 --quiet --out "$AA"
UNION=$ROOT/reports/benchmarks/union_worst_case_$NAME.json
step union "$UNION" $PY "$HERE/union_worst_case.py" "$AA" "$STRONG" --json "$UNION"
