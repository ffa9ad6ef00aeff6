"""How should the detector's evidence be combined? For one checkpoint: fit three normalised terms,
the classifier's log(1 - max softmax) and `joint`'s two (posterior, log reconstruction error); each
(value - clean median) / (clean 95th percentile - clean median), on the first 2,500 validation images, attack the other 2,500
with oblivious PGD-40 (step 0.01, random start), and report for each single term, the max and the
sum of each subset: the share of successful adversarials flagged at the 5 % threshold of the fitting
images, the realised FPR on the held-out clean images, and the AUROC. ``sum+`` sums the positive parts
only (a term below its clean median adds nothing, so a confidently wrong classifier cannot offset the
reconstruction's evidence). Validation images only.

    python benchmarks/score_combinations.py --checkpoint RUN --out reports/benchmarks/score_combinations.json
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
import torch
from _results import add_results, run_name  # benchmarks/_results.py (scripts run from this folder)

import robustgen
from robustgen.attacks import make_attack, run_attack
from robustgen.detectors.scores import Joint, batched, log_mass_except
from robustgen.evaluation.metrics import auroc

TERMS = ("classifier", "posterior", "recon")


def combinations(model, x_fit, x, y, eps: float = 0.1, fpr: float = 0.05) -> dict:
    joint = Joint()
    joint.fit(model, x_fit)

    def columns(b):  # (classifier log(1 - max softmax), joint's two terms, predicted label), one forward pass
        z, logits = joint.normalised_terms(model, b)
        pred = logits.argmax(1, keepdim=True)
        return torch.cat([log_mass_except(logits.log_softmax(1), pred)[:, None], z, pred.to(b.dtype)], dim=1)

    def raw(z):
        with torch.no_grad():
            return batched(columns, z, 500)

    fit_raw = raw(x_fit)
    median = fit_raw[:, 0].median()
    spread = fit_raw[:, 0].quantile(0.95) - median
    x_adv = run_attack(make_attack("pgd", model, eps, steps=40, step_size=0.01), x, y, seed=0)

    def terms(z):
        out = raw(z)
        out[:, 0] = (out[:, 0] - median) / spread
        return out[:, :3].double().numpy(), out[:, 3].long().numpy()

    fit_terms, _ = terms(x_fit)
    clean, pred = terms(x)
    adv, pred_adv = terms(x_adv)
    correct = pred == y.numpy()
    success = correct & (pred_adv != y.numpy())
    out = {"eps": eps, "n_fit": len(x_fit), "n": len(y), "successful": int(success.sum()), "results": {}}
    for k in (1, 2, 3):
        for subset in itertools.combinations(range(3), k):
            for how in (("single",) if k == 1 else ("max", "sum", "sum+")):
                def combine(t):
                    part = t[:, list(subset)]
                    if how == "max" or how == "single":
                        return part.max(1)
                    return (part.clip(min=0) if how == "sum+" else part).sum(1)
                thr = np.quantile(combine(fit_terms), 1 - fpr)
                c, a = combine(clean)[correct], combine(adv)[success]
                name = TERMS[subset[0]] if k == 1 else f"{how}({', '.join(TERMS[i] for i in subset)})"
                out["results"][name] = {"tpr_at_fpr_5": float((a > thr).mean()), "fpr_heldout": float((c > thr).mean()),
                                        "auroc": auroc(c, a)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--eps", default="0.1", help="comma-separated budgets")
    ap.add_argument("--out", help="add the result to this JSON file, keyed by the checkpoint's run name")
    args = ap.parse_args()
    torch.manual_seed(0)
    model = robustgen.load_model(args.checkpoint).eval()
    x, y = robustgen.load_dataset("mnist", "val")
    found = {}
    for eps in (float(e) for e in args.eps.split(",")):
        result = found[eps] = combinations(model, x[:2500], x[2500:], y[2500:], eps)
        print(f"eps {eps:g}: {result['successful']} successful adversarials")
        for name, r in sorted(result["results"].items(), key=lambda kv: -kv[1]["tpr_at_fpr_5"]):
            print(f"  {name:40s} TPR@5% {r['tpr_at_fpr_5']:.4f}  FPR {r['fpr_heldout']:.4f}  AUROC {r['auroc']:.4f}")
    if args.out:
        add_results(args.out, {f"{run_name(args.checkpoint)} eps {eps:g}": result for eps, result in found.items()})

if __name__ == "__main__":
    main()
