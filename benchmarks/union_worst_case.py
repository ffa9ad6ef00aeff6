"""The per-input worst case over several attack reports of the same model, inputs and thresholds: an
input counts when any attack of any report made it misclassified and unflagged. For adding attacks to
a finished report (another precision, another budget) without running it again.

    python benchmarks/union_worst_case.py reports/robust-mnist-conv4-pgd/attack-strong-confidence-eps0.3-n1000 \\
        reports/robust-mnist-conv4-pgd/attack-autoattack-apgd-bf16-eps0.3-n1000 --json ...

Refuses reports of other weights or data (``model_sha256``, ``data_sha256``), of another N, or whose
thresholds differ by more than 0.01 % for a score they share (the same fit on two CPUs differs in
the seventh digit).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

import robustgen
from robustgen.evaluation.metrics import wilson_interval


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reports", nargs="+", help="attack report folders")
    ap.add_argument("--json", help="also write the result to this JSON file")
    args = ap.parse_args()
    reports = [robustgen.read_report(r) for r in args.reports]  # checksums verified
    first = reports[0]["meta"]
    for path, rep in zip(args.reports[1:], reports[1:]):
        for key in ("model_sha256", "data_sha256", "n"):
            if rep["meta"].get(key) != first.get(key):
                raise SystemExit(f"{path}: {key} differs from {args.reports[0]}'s; the union needs the same inputs")
    thresholds = {}
    for path, rep in zip(args.reports, reports):
        for score, t in rep["detection"].groupby("score")["threshold"].first().items():
            if score in thresholds and not np.isclose(thresholds[score], t, rtol=1e-4):
                raise SystemExit(f"{path}: the {score} threshold {t} differs from {thresholds[score]}")
            thresholds[score] = t
    rows = []
    for (eps, score), _ in reports[0]["worst_case"].groupby(["eps", "score"]):
        broken, attacks = np.zeros(first["n"], dtype=bool), []
        for path, rep in zip(args.reports, reports):
            table = rep["per_input"]
            part = table[np.isclose(table["eps"], eps)].sort_values("index")
            cols = [c for c in part.columns if c.endswith(f":{score}")]
            if part.empty or not cols:
                continue
            broken |= part[cols].to_numpy().astype(bool).any(axis=1)
            attacks += [f"{c.split(':')[0]} ({path.rstrip('/').split('/')[-1]})" for c in cols]
        k, n = int(broken.sum()), int(first["n"])
        low, high = wilson_interval(k, n)
        rows.append({"eps": float(eps), "score": score, "n": n, "undetected_success_rate": k / n, "ci_low": low,
                     "ci_high": high, "threshold": float(thresholds[score]), "attacks": attacks})
        print(f"eps {eps:g}, {score}: {k} of {n} = {100 * k / n:.1f} % [{100 * low:.1f}, {100 * high:.1f}] "
              f"over {len(attacks)} attacks")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"reports": args.reports, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
