"""Where does the `recon` score lose its adversarials? A diagnostic for one checkpoint: attack
validation images with oblivious PGD and score the successful adversarials with the reconstruction
error decoded four ways, each against correctly classified clean inputs (AUROC):

    softmax, attacked style     the `recon` score (the paper's: softmax class vector)
    one-hot, attacked style     `recon-onehot`
    softmax / one-hot, clean style   an oracle that decodes the attacked label with the style of the
                                 *clean* input, which no detector has: how much the style's drift under
                                 the attack costs

    python benchmarks/style_drift.py --checkpoint RUN --out reports/benchmarks/style_drift.json

Validation images only (never test images); the attack is PGD-40 with step 0.01 and a random start,
the budget of the `attack-pgd` reports.
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F
from _results import add_results, run_name  # benchmarks/_results.py (scripts run from this folder)

import robustgen
from robustgen.attacks import make_attack, run_attack
from robustgen.evaluation.metrics import auroc


def diagnose(model, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int = 40, step_size: float = 0.01) -> dict:
    with torch.no_grad():
        correct = (model(x).argmax(1) == y).numpy()
    x_adv = run_attack(make_attack("pgd", model, eps, steps=steps, step_size=step_size), x, y, seed=0)
    k = model.num_classes
    with torch.no_grad():
        logits, style = model.encode(x)
        logits_adv, style_adv = model.encode(x_adv)
        success = correct & (logits_adv.argmax(1) != y).numpy()

        def err(z, class_vector, s):
            return (z - model.decode(class_vector, s)).flatten(1).norm(dim=1).numpy()

        soft, soft_adv = logits.softmax(1), logits_adv.softmax(1)
        hard, hard_adv = F.one_hot(logits.argmax(1), k).float(), F.one_hot(logits_adv.argmax(1), k).float()
        ways = {
            "softmax_attacked_style": (err(x, soft, style), err(x_adv, soft_adv, style_adv)),
            "onehot_attacked_style": (err(x, hard, style), err(x_adv, hard_adv, style_adv)),
            "softmax_clean_style": (err(x, soft, style), err(x_adv, soft_adv, style)),
            "onehot_clean_style": (err(x, hard, style), err(x_adv, hard_adv, style)),
        }
        drift = (style_adv - style).norm(dim=1).numpy()
        max_prob = soft_adv.max(1).values.numpy()
    out = {"eps": eps, "n": len(y), "successful": int(success.sum()),
           "style_drift_successful": float(drift[success].mean()),
           "style_norm_clean": float(style.norm(dim=1).mean()),
           "max_softmax_successful": float(max_prob[success].mean())}
    for name, (clean, adv) in ways.items():
        out[name] = {"auroc": auroc(clean[correct], adv[success]),
                     "err_clean": float(clean[correct].mean()), "err_adv": float(adv[success].mean())}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("-n", type=int, default=2000, help="validation images attacked")
    ap.add_argument("--out", help="add the result to this JSON file, keyed by the checkpoint's run name")
    args = ap.parse_args()
    torch.manual_seed(0)
    model = robustgen.load_model(args.checkpoint).eval()
    x, y = robustgen.load_dataset("mnist", "val")
    result = diagnose(model, x[:args.n], y[:args.n], args.eps)
    print(json.dumps(result, indent=2))
    if args.out:
        add_results(args.out, {f"{run_name(args.checkpoint)} eps {args.eps:g}": result})

if __name__ == "__main__":
    main()
