"""Time robustgen's attacks against torchattacks' PGD called directly: same model, same inputs,
same process.

    python benchmarks/attack_speed.py --checkpoint runs/<run> [--n 1000] [--eps 0.3] [--device auto]

Reports seconds per attack and ratios to torchattacks.PGD (40 steps, step 0.01, random start):
- ``pgd`` is torchattacks' PGD behind robustgen's registry, batching and eps/range/NaN checks, so
  its ratio shows the overhead of that wrapper (should be close to 1);
- ``adaptive-pgd`` runs a plain PGD round plus up to ``--search-steps`` detector-aware rounds,
  each step also running the decoder for the detector score, so it costs several PGD runs.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torchattacks

import robustgen
from robustgen.attacks import make_attack, run_attack
from robustgen.runs import latest_run, resolve_device


def timed(fn, device: torch.device) -> tuple[float, torch.Tensor]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", help="run folder or checkpoint (default: most recent run under ./runs)")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--eps", type=float, default=0.3)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--score", default="recon", help="detector score attacked by adaptive-pgd")
    ap.add_argument("--search-steps", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", help="also write the result to this JSON file")
    args = ap.parse_args()
    device = resolve_device(args.device)
    model = robustgen.load_model(args.checkpoint or latest_run(), device)
    x, y = robustgen.load_dataset("mnist", "test", limit=args.n)
    x_val, _ = robustgen.load_dataset("mnist", "val", limit=2000)
    det = robustgen.make_detector(model, args.score).fit(x_val)
    xd, yd = x.to(device), y.to(device)

    def direct():
        atk = torchattacks.PGD(model, eps=args.eps, alpha=0.01, steps=40, random_start=True)
        return torch.cat([atk(xd[i:i + args.batch_size], yd[i:i + args.batch_size])
                          for i in range(0, args.n, args.batch_size)])

    def ours(name):
        atk = make_attack(name, model, args.eps, detector=det, search_steps=args.search_steps)
        return lambda: run_attack(atk, xd, yd, batch_size=args.batch_size)

    timed(direct, device)  # warm-up (allocator, kernels)
    torch.manual_seed(0)
    t_ref, _ = timed(direct, device)
    torch.manual_seed(0)
    t_pgd, _ = timed(ours("pgd"), device)
    torch.manual_seed(0)
    t_ada, x_ada = timed(ours("adaptive-pgd"), device)
    result = {"device": str(device), "n": args.n, "eps": args.eps, "score": args.score,
              "torchattacks_pgd_s": t_ref, "robustgen_pgd_s": t_pgd, "robustgen_adaptive_pgd_s": t_ada,
              "ratio_pgd": t_pgd / t_ref, "ratio_adaptive_pgd": t_ada / t_ref}
    print(f"device {device}, N = {args.n}, eps = {args.eps}, PGD-40 step 0.01")
    print(f"  torchattacks.PGD direct    : {t_ref:8.2f} s")
    print(f"  robustgen pgd              : {t_pgd:8.2f} s   ratio {t_pgd / t_ref:.2f}")
    print(f"  robustgen adaptive-pgd ({args.score}): {t_ada:8.2f} s   ratio {t_ada / t_ref:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
