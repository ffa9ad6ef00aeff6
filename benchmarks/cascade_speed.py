"""Only attack what still stands: the same attack report run as a cascade (the default) and with
``--full`` (every attack on every input), one after the other in one run, same seed (issue 29).

    python benchmarks/cascade_speed.py --checkpoint RUN --autoencoder fashion-ae --eps 0.1 -n 500 \
        --out reports/fast-fashion/cascade-eps0.1 --json reports/benchmarks/cascade_speed.json

Writes both report folders (OUT/cascade, OUT/full) and a JSON with each run's wall time, the ratio,
and per (eps, score) both worst cases and their difference. Goal: at least 3x faster, every worst
case within 1 point.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from _results import emit  # benchmarks/_results.py (scripts run from this folder)

STRONG = "pgd,square,autoattack,adaptive-pgd,selective-pgd,orthogonal-pgd,guarded-apgd"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--autoencoder", default="fashion-ae")
    ap.add_argument("--score", default="confidence,recon,joint-sum,magnet,mahalanobis")
    ap.add_argument("--method", default=STRONG)
    ap.add_argument("--eps", default="0.1")
    ap.add_argument("-n", type=int, default=500)
    ap.add_argument("--out", required=True)
    ap.add_argument("--json")
    args = ap.parse_args()
    out = Path(args.out)
    common = ["--checkpoint", args.checkpoint, "--autoencoder", args.autoencoder, "--method", args.method,
              "--eps", args.eps, "-n", str(args.n), "--score", args.score, "--targets", "untargeted",
              "--queries", "1000", "--sanity-n", "50", "--quiet"]
    result = {"command": "robustgen attack " + " ".join(common), "runs": {}}
    for mode, extra in (("full", ["--full"]), ("cascade", [])):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "robustgen", "attack", *common, *extra, "--out", str(out / mode)],
                       check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        worst = pd.read_csv(out / mode / "worst_case.csv")
        result["runs"][mode] = {"seconds": seconds, "worst_case": {f"{r.eps:g} {r.score}": r.undetected_success_rate
                                                                   for r in worst.itertuples()}}
    full, cascade = result["runs"]["full"], result["runs"]["cascade"]
    result["speedup"] = full["seconds"] / cascade["seconds"]
    result["worst_case_diff_points"] = {k: 100 * (cascade["worst_case"][k] - v) for k, v in full["worst_case"].items()}
    result["goal_met"] = result["speedup"] >= 3 and all(abs(d) <= 1.0 for d in result["worst_case_diff_points"].values())
    emit(result, args.json)


if __name__ == "__main__":
    main()
