"""Does an attack find the same with bfloat16 passes? Each attack runs twice on the same inputs with the
same seed, once in float32 and once under bfloat16 autocast (``make_attack(..., precision="bfloat16")``,
``robustgen attack --precision bfloat16``); both results are judged by the float32 model.

    python benchmarks/attack_precision.py --checkpoint robust-mnist-conv4-pgd --attacks pgd,apgd \\
        --eps 0.3 --n 1000 --json reports/benchmarks/attack_precision_cpu.json

Prints, per attack and precision, the wall time and the robust accuracy with its Wilson 95 % interval,
the speed-up, and on how many inputs the two verdicts differ; and how far the two arithmetics' input
gradients of the cross-entropy agree on the clean inputs (signs kept, median cosine similarity).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from _results import predict  # benchmarks/_results.py (scripts run from this folder)

import robustgen
from robustgen.attacks import make_attack, run_attack
from robustgen.evaluation.metrics import wilson_interval
from robustgen.runs import resolve_device


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gradient_agreement(model, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> tuple[float, float]:
    """How bfloat16 autocast changes the input gradient of the cross-entropy: the share of its signs kept
    (pixels where either is non-zero; on a robust model most are tiny, and their signs noise) and the
    median cosine similarity per image."""
    grads = []
    for bf16 in (False, True):
        xr = x.clone().requires_grad_(True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(xr).float(), y, reduction="sum")
        grads.append(torch.autograd.grad(loss, xr)[0].flatten(1))
    live = (grads[0] != 0) | (grads[1] != 0)
    signs = float((grads[0].sign() == grads[1].sign())[live].float().mean())
    return signs, float(F.cosine_similarity(grads[0], grads[1], dim=1).median())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="robust-mnist-conv4-pgd", help="model (shipped name, run, checkpoint)")
    ap.add_argument("--attacks", default="pgd,apgd", help="comma-separated oblivious attacks")
    ap.add_argument("--eps", type=float, default=0.3)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", help="also write the result to this JSON file")
    args = ap.parse_args()
    device = resolve_device(args.device)
    model = robustgen.load_model(args.checkpoint, device)
    dataset = model.meta["dataset"]["name"]
    x, y = robustgen.load_dataset(dataset, "test", limit=args.n)
    x, y = x.to(device), y.to(device)
    clean = predict(model, x, args.batch_size) == y
    result = {"device": str(device), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
              "checkpoint": args.checkpoint, "n": args.n, "eps": args.eps, "seed": args.seed,
              "clean_accuracy": float(clean.float().mean()),
              "attacks": {}}
    signs, cosine = gradient_agreement(model, x[:args.batch_size], y[:args.batch_size], device)
    result.update(gradient_sign_agreement=signs, gradient_cosine_median=cosine)
    print(f"device {device} ({result['cpu_capability']}), {args.checkpoint}, N = {args.n}, eps = {args.eps}; "
          f"input gradient under bfloat16: {100 * signs:.1f} % of its signs kept, median cosine {cosine:.3f}")
    for name in args.attacks.split(","):
        held, row = {}, {}
        for precision in ("float32", "bfloat16"):
            attack = make_attack(name, model, args.eps, precision=precision)
            sync(device)
            start = time.perf_counter()
            adv = run_attack(attack, x, y, batch_size=args.batch_size, seed=args.seed)
            sync(device)
            seconds = time.perf_counter() - start
            held[precision] = clean & (predict(model, adv, args.batch_size) == y)  # judged in float32
            k = int(held[precision].sum())
            low, high = wilson_interval(k, args.n)
            row[precision] = {"seconds": seconds, "robust_accuracy": k / args.n, "wilson95": [low, high],
                              "budget": attack.budget}
            print(f"  {name:10s} {precision:8s}: {seconds:8.1f} s, robust accuracy {100 * k / args.n:.1f} % "
                  f"[{100 * low:.1f}, {100 * high:.1f}]")
        row["speedup"] = row["float32"]["seconds"] / row["bfloat16"]["seconds"]
        row["verdicts_differ"] = int((held["float32"] != held["bfloat16"]).sum())
        print(f"  {name:10s} bfloat16 {row['speedup']:.2f}x faster; verdicts differ on {row['verdicts_differ']} inputs")
        result["attacks"][name] = row
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
