"""What should the decoder rebuild from an attacked input during adversarial training: the clean
image or the attacked one? Trains the same short adversarial recipe both ways and measures, on
validation images only (never test images), what each choice does to accuracy and detection.

    python benchmarks/recon_target.py                       # 12,000 training images, 4 epochs each
    python benchmarks/recon_target.py --limit 55000 --epochs 8 --out reports/benchmarks/recon_target.json

Reported per choice: clean accuracy, PGD-20 accuracy at eps 0.3, mean clean reconstruction error,
and the ``recon`` detector's AUROC on successful PGD adversarials vs correct clean images at eps
0.1 and 0.3 (threshold-free), with the detector fitted on the other half of the validation split.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from _results import trial_optimizer  # benchmarks/_results.py (scripts run from this folder)

import robustgen
from robustgen.attacks import make_attack, run_attack
from robustgen.evaluation.metrics import auroc
from robustgen.inference import evaluate
from robustgen.training.config import load_config
from robustgen.training.train import build_model, fit


def measure(model, x_fit, x, y, eps_list=(0.1, 0.3)) -> dict:
    det = robustgen.ReconstructionDetector(model, "recon").fit(x_fit, fpr=0.05)
    with torch.no_grad():
        pred = model(x).argmax(1)
    correct = (pred == y).numpy()
    s_clean = det.score(x)
    out = {"clean_acc": float(correct.mean()), "clean_recon": float(evaluate(model, x, y)["recon_pred_softmax"])}
    for eps in eps_list:
        torch.manual_seed(0)
        x_adv = run_attack(make_attack("pgd", model, eps, steps=20, step_size=eps / 8), x, y)
        with torch.no_grad():
            pred_adv = model(x_adv).argmax(1).numpy()
        success = correct & (pred_adv != y.numpy())
        out[f"pgd20_acc_eps{eps:g}"] = float((correct & ~success).mean())
        out[f"recon_auroc_successful_eps{eps:g}"] = auroc(s_clean[correct], det.score(x_adv)[success])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=12000, help="training images")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--n", type=int, default=1000, help="validation images attacked")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    x_val, y_val = robustgen.load_dataset("mnist", "val")
    x_fit, (x, y) = x_val[args.n:], (x_val[:args.n], y_val[:args.n])
    results = {}
    for target in ("clean", "attacked"):
        cfg = load_config("robust-mnist", [f"data.limit_train={args.limit}", f"train.epochs={args.epochs}",
                                           "adversary.ramp_epochs=1", f'adversary.recon_target="{target}"'])
        torch.manual_seed(0)
        model = build_model(cfg, 10)
        xt, yt = robustgen.load_dataset("mnist", "train", limit=args.limit)
        opt = trial_optimizer(model, cfg)
        start = time.perf_counter()
        fit(model, opt, cfg, (xt, yt), (x_fit[:1000], y_val[args.n:args.n + 1000]))
        model.eval()
        results[target] = {"train_seconds": time.perf_counter() - start, **measure(model, x_fit, x, y)}
        print(target, json.dumps(results[target], indent=1), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
