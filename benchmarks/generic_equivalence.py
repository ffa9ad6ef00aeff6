"""The generic path equals the native one: robust-mnist evaluated as robustgen's own network with
its named scores, and as a plain ``nn.Module`` (through ``robustgen.Classifier``) with the same
scores given as functions, must give the same per-input outcomes, attack by attack.

    python benchmarks/generic_equivalence.py -n 200 --json reports/benchmarks/generic_equivalence.json

Both runs go through ``robustgen.evaluate`` with the same seed; the tables are compared with
``attack_seconds`` (wall time) left out.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

import robustgen

METHODS = ["pgd", "apgd", "square", "adaptive-pgd", "selective-pgd", "orthogonal-pgd", "guarded-apgd"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default="robust-mnist")
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--eps", default="0.3")
    ap.add_argument("--json")
    args = ap.parse_args()
    native = robustgen.load_model(args.checkpoint)
    x_val, _ = robustgen.load_dataset("mnist", "val")
    x, y = robustgen.load_dataset("mnist", "test", limit=args.n)
    eps = [float(e) for e in args.eps.split(",")]
    kw = dict(eps=eps, attacks=METHODS, sanity_n=0, seed=0, queries=1000, targets="untargeted")
    maha = robustgen.make_detector(native, "mahalanobis").fit(x_val)  # its score, given to the generic path as a function

    def confidence(images):
        return 1.0 - native(images).softmax(dim=1).max(dim=1).values

    def mahalanobis(images):
        return maha.scorer.evaluate(native, images)[0]

    result = {"checkpoint": args.checkpoint, "n": args.n, "eps": eps, "methods": METHODS}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        robustgen.evaluate(native, x_val, x, y, scores=["confidence", "mahalanobis"], out=Path(tmp) / "native", **kw)
        result["native_seconds"] = time.perf_counter() - start
        plain = robustgen.Classifier(native, (1, 28, 28), name="robust-mnist as a plain module")
        start = time.perf_counter()
        robustgen.evaluate(plain, x_val, x, y, scores={"confidence": confidence, "mahalanobis": mahalanobis},
                           out=Path(tmp) / "generic", **kw)
        result["generic_seconds"] = time.perf_counter() - start
        for name in ("per_input.csv", "worst_case.csv", "detection.csv", "misclassification.csv"):
            a, b = (pd.read_csv(Path(tmp) / side / name) for side in ("native", "generic"))
            if "attack_seconds" in a:
                a, b = a.drop(columns="attack_seconds"), b.drop(columns="attack_seconds")
            if name == "detection.csv":  # the generic path has no decoder: its reconstruction columns are empty
                a, b = (t.drop(columns=["err_clean_pred", "err_adv_pred", "err_adv_true"]) for t in (a, b))
            result[name] = bool(a.equals(b))
            if not result[name]:  # which columns differ, and by how much
                result[name + " differs"] = {c: float((a[c] - b[c]).abs().max()) if a[c].dtype.kind == "f" else "values"
                                             for c in a.columns if not a[c].equals(b[c])}
        result["worst_case"] = pd.read_csv(Path(tmp) / "generic" / "worst_case.csv").to_dict("records")
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
