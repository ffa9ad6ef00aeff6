"""What does weight averaging (``train.ema``) buy? A run trained with it saves the moving average as its
model and the trained weights beside it (``extra.trained_state`` of its checkpoint); this attacks both
on the same test inputs with the same seed.

    python benchmarks/ema_gain.py --run runs/RUN --attacks pgd,apgd --eps 0.3 --n 1000 \\
        --precision bfloat16 --json reports/benchmarks/ema_gain_conv4.json

Prints, per weights (averaged, trained), the clean accuracy and per attack the robust accuracy with
its Wilson 95 % interval, and on how many inputs the two verdicts differ.
"""

from __future__ import annotations

import argparse
import json

from _results import predict  # benchmarks/_results.py (scripts run from this folder)

import robustgen
from robustgen.attacks import make_attack, run_attack
from robustgen.checkpoint import load_checkpoint, model_from_checkpoint
from robustgen.evaluation.metrics import wilson_interval
from robustgen.runs import resolve_device


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a run folder (or its checkpoint.pt) trained with train.ema")
    ap.add_argument("--attacks", default="pgd,apgd", help="comma-separated oblivious attacks")
    ap.add_argument("--eps", type=float, default=0.3)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--precision", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", help="also write the result to this JSON file")
    args = ap.parse_args()
    device = resolve_device(args.device)
    ckpt = load_checkpoint(args.run)
    if "trained_state" not in ckpt["extra"]:
        raise SystemExit(f"ema_gain: {ckpt['path']} holds no trained weights beside its model (not trained with train.ema)")
    averaged = model_from_checkpoint(ckpt, device)
    trained = model_from_checkpoint({**ckpt, "model_state": ckpt["extra"]["trained_state"]}, device)
    x, y = robustgen.load_dataset(ckpt["dataset"]["name"], "test", limit=args.n)
    x, y = x.to(device), y.to(device)
    result = {"run": ckpt["path"], "epoch": ckpt["epoch"], "ema": ckpt["config"]["train"].get("ema"), "n": args.n,
              "eps": args.eps, "seed": args.seed, "precision": args.precision, "device": str(device), "weights": {}}
    held = {}
    for name, model in (("averaged", averaged), ("trained", trained)):
        clean = predict(model, x, args.batch_size) == y
        row = {"clean_accuracy": float(clean.float().mean()), "attacks": {}}
        print(f"{name:8s}: clean {100 * row['clean_accuracy']:.1f} %")
        for attack_name in args.attacks.split(","):
            attack = make_attack(attack_name, model, args.eps, precision=args.precision)
            adv = run_attack(attack, x, y, batch_size=args.batch_size, seed=args.seed)
            held[name, attack_name] = clean & (predict(model, adv, args.batch_size) == y)
            k = int(held[name, attack_name].sum())
            low, high = wilson_interval(k, args.n)
            row["attacks"][attack_name] = {"robust_accuracy": k / args.n, "wilson95": [low, high], "budget": attack.budget}
            print(f"  {attack_name:10s} robust accuracy {100 * k / args.n:.1f} % [{100 * low:.1f}, {100 * high:.1f}]")
        result["weights"][name] = row
    result["verdicts_differ"] = {a: int((held["averaged", a] != held["trained", a]).sum()) for a in args.attacks.split(",")}
    print("verdicts differ: " + ", ".join(f"{a} {k}" for a, k in result["verdicts_differ"].items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
