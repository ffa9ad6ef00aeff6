"""A detector with a non-differentiable step inside, given with no surrogate: does the report's worst
case reach what an attack that knows the step finds? (issue 29)

The score is fast-mnist's 1 - max softmax rounded to steps of 0.01 (``round``: a zero gradient
everywhere). Two runs of ``robustgen.evaluate`` on the same inputs, same seed, same attacks:

- blocked: the score alone; the gradient check finds it blocked and the attacks follow a gradient
  estimated from its values (NES), beside the gradient-free ones;
- straight-through: the same score with the unrounded one as ``surrogate=`` (BPDA: an attacker who
  knows the step and differentiates through it as the identity).

    python benchmarks/blocked_gradient.py -n 100 --eps 0.1,0.2 --json reports/benchmarks/blocked_gradient.json

Goal: per eps, blocked >= straight-through - 1 input in 100.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from _results import emit  # benchmarks/_results.py (scripts run from this folder)

import robustgen

STEP = 0.01


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default="fast-mnist")
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("--eps", default="0.1,0.2")
    ap.add_argument("--methods", default="strong")
    ap.add_argument("--json")
    args = ap.parse_args()
    model = robustgen.load_model(args.checkpoint)
    x_val, _ = robustgen.load_dataset("mnist", "val", limit=2000)
    x, y = robustgen.load_dataset("mnist", "test", limit=args.n)
    eps = [float(e) for e in args.eps.split(",")]
    attacks = args.methods if args.methods == "strong" else args.methods.split(",")

    def smooth(images):
        return 1.0 - model(images).softmax(dim=1).max(dim=1).values

    def rounded(images):
        return torch.round(smooth(images) / STEP) * STEP

    kw = dict(eps=eps, attacks=attacks, sanity_n=0, seed=0, queries=1000, targets="untargeted")
    result = {"checkpoint": args.checkpoint, "n": args.n, "eps": eps, "attacks": attacks, "step": STEP, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, det in (("blocked", robustgen.Detector.from_function(model, rounded, "rounded")),
                          ("straight-through", robustgen.Detector.from_function(model, rounded, "rounded",
                                                                                  surrogate=smooth))):
            start = time.perf_counter()
            report = robustgen.evaluate(model, x_val, x, y, scores=[det], out=Path(tmp) / name, **kw)
            worst = report["worst_case"]
            gradients = pd.read_csv(Path(tmp) / name / "gradients.csv")
            result["runs"][name] = {
                "seconds": time.perf_counter() - start,
                "gradient": gradients.iloc[0].to_dict(),
                "worst_case": {f"{e:g}": float(worst.loc[worst["eps"] == e, "undetected_success_rate"].iloc[0]) for e in eps},
                "by_attack": {f"{r.method} eps {r.eps:g}": float(r.undetected_success_rate)
                              for r in report["detection"].itertuples()},
            }
    b, s = result["runs"]["blocked"]["worst_case"], result["runs"]["straight-through"]["worst_case"]
    result["gap_inputs"] = {e: round((s[e] - b[e]) * args.n) for e in b}
    result["goal_met"] = all(b[e] >= s[e] - 0.01 for e in b)
    emit(result, args.json)


if __name__ == "__main__":
    main()
