"""Which ``[style]`` training options make the label carry the class and the style only how it was
drawn? Trains the fast-mnist recipe (shortened) once per variant and measures the goals of the
style issue on validation images only (never test images).

    python benchmarks/style_options.py --epochs 6 --variant base= \\
        --variant cc=style.consistency=0.1,train.alpha=0.5 --out reports/benchmarks/style_options.json

A variant is NAME=OVERRIDE[,OVERRIDE...] with the CLI's --set syntax. Reported per variant: clean
accuracy, mean L2 reconstruction error (predicted label), class probe accuracy from the style (fitted
on one half of the validation split, scored on the other), label sensitivity, drawn-as-label, style-
and pixel-space 97-NN same-class share, and for oblivious PGD-20 at eps 0.1: the `recon` AUROC on
successful adversarials, the best score's TPR at 5 % FPR, and the mean L2 change of the style
that those successful attacks caused (``style_drift_successful``).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from _results import trial_optimizer  # benchmarks/_results.py (scripts run from this folder)

import robustgen
from robustgen.attacks import make_attack, run_attack
from robustgen.evaluation.experiments import neighbours
from robustgen.evaluation.metrics import auroc
from robustgen.evaluation.style_measures import style_measures
from robustgen.inference import encode_dataset, evaluate
from robustgen.training.config import load_config
from robustgen.training.train import build_model, fit

SCORES = ("recon", "recon-onehot", "margin", "confidence", "posterior", "joint")


def detection(model, x_fit, x, y, eps: float = 0.1) -> dict:
    with torch.no_grad():
        correct = (model(x).argmax(1) == y).numpy()
    torch.manual_seed(0)
    x_adv = run_attack(make_attack("pgd", model, eps, steps=20, step_size=eps / 8), x, y)
    with torch.no_grad():
        success = correct & (model(x_adv).argmax(1) != y).numpy()
        drift = (model.encode(x_adv)[1] - model.encode(x)[1]).norm(dim=1).numpy()
    out = {f"pgd20_success_eps{eps:g}": float(success.mean()), "style_drift_successful": float(drift[success].mean())}
    for name in SCORES:
        det = robustgen.make_detector(model, name).fit(x_fit, fpr=0.05)
        clean, adv = det.score(x)[correct], det.score(x_adv)[success]
        out[f"{name}_auroc"] = auroc(clean, adv)
        out[f"{name}_tpr5"] = float((adv > det.threshold).mean())
    return out


def measure(model, x_val, y_val, n: int) -> dict:
    half = len(y_val) // 2
    (xa, ya), (xb, yb) = (x_val[:half], y_val[:half]), (x_val[half:], y_val[half:])
    ev = evaluate(model, xb, yb)
    out = {"accuracy": ev["accuracy"], "recon_error": ev["recon_pred_onehot"]}
    out.update({k: v for k, v in style_measures(model, xa, ya, xb, yb).items() if k in
                ("probe_accuracy", "label_sensitivity", "drawn_as_label")})
    nb = neighbours(model, encode_dataset(model, xb, yb), n_queries=1000)["averaged"]
    out["style_nn_same_class"] = nb["style"]["same_class_share"]
    out["pixel_nn_same_class"] = nb["image"]["same_class_share"]
    out.update(detection(model, xa[:2000], xb[:n], yb[:n]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="fast-mnist")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--limit", type=int, help="training images (default: all 55,000)")
    ap.add_argument("--n", type=int, default=1000, help="validation images attacked")
    ap.add_argument("--variant", action="append", required=True, metavar="NAME=OVERRIDES")
    ap.add_argument("--out", help="write the results as JSON here (appends to an existing file's results)")
    args = ap.parse_args()
    x_val, y_val = robustgen.load_dataset("mnist", "val")
    xt, yt = robustgen.load_dataset("mnist", "train", limit=args.limit)
    results = {}
    if args.out:
        try:
            with open(args.out) as f:
                results = json.load(f)["results"]
        except FileNotFoundError:
            pass
    for spec in args.variant:
        name, _, rest = spec.partition("=")
        overrides = [o for o in rest.split(",") if o] + [f"train.epochs={args.epochs}"]
        cfg = load_config(args.config, overrides)
        torch.manual_seed(cfg.train.seed)
        model = build_model(cfg, 10)
        opt = trial_optimizer(model, cfg)
        start = time.perf_counter()
        fit(model, opt, cfg, (xt, yt), (x_val[:1000], y_val[:1000]))
        model.eval()
        results[name] = {"overrides": overrides, "train_seconds": time.perf_counter() - start,
                         **measure(model, x_val, y_val, args.n)}
        print(name, json.dumps(results[name]), flush=True)
        if args.out:
            with open(args.out, "w") as f:
                json.dump({"config": args.config, "epochs": args.epochs, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
