"""How well the estimated gradient of a blocked score points (issue 29): fast-mnist's 1 - max softmax
rounded to steps of 0.01 has a zero gradient; on PGD-40 examples at eps 0.1 (misclassified, with the
unrounded score near the threshold, 0.003-0.05, or mid-range, 0.05-0.6) compare the estimate of
``robustgen.detectors.estimated_gradient`` at several step lengths, and random-direction NES, with the
unrounded score's own gradient (cosine, share of equal signs).

    python benchmarks/gradient_estimate.py --json reports/benchmarks/gradient_estimate.json
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from _results import emit  # benchmarks/_results.py (scripts run from this folder)

import robustgen
from robustgen.attacks import make_attack, run_attack
from robustgen.detectors.estimated_gradient import span_gradient


def nes(fn, x, pairs=16, sigma=0.02):
    g = torch.zeros_like(x)
    for _ in range(pairs):
        u = torch.randn_like(x)
        g += (fn(x + sigma * u) - fn(x - sigma * u)).view(-1, 1, 1, 1) * u
    return g / (2 * sigma * pairs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=300)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.manual_seed(0)
    model = robustgen.load_model("fast-mnist")
    x, y = robustgen.load_dataset("mnist", "test", limit=args.n)

    def smooth(images):
        return 1.0 - model(images).softmax(dim=1).max(dim=1).values

    def rounded(images):
        return torch.round(smooth(images) / 0.01) * 0.01

    adv = run_attack(make_attack("pgd", model, 0.1), x, y, seed=0)
    with torch.no_grad():
        s, mis = smooth(adv), model(adv).argmax(1) != y
    result = {"n": args.n}
    for region, (lo, hi) in {"near_threshold": (0.003, 0.05), "mid": (0.05, 0.6)}.items():
        idx = (mis & (s > lo) & (s < hi)).nonzero()[:, 0][:30]
        xa = adv[idx].clone().requires_grad_(True)
        (g_true,) = torch.autograd.grad(smooth(xa).sum(), xa)
        rows = {}
        estimates = {f"span h={h:g}": (lambda h=h: span_gradient(rounded, model, adv[idx], h=h)) for h in (0.02, 0.05, 0.1, 0.2, 0.5)}
        estimates["nes 16 pairs sigma=0.02"] = lambda: nes(lambda z: rounded(z.clamp(0, 1)).detach(), adv[idx])
        for name, estimate in estimates.items():
            with torch.no_grad():
                g = estimate()
            rows[name] = {"cosine": float(F.cosine_similarity(g.flatten(1), g_true.flatten(1)).mean()),
                          "sign_agreement": float((g.sign() == g_true.sign()).float().mean())}
        result[region] = {"inputs": len(idx), **rows}
    emit(result, args.json)


if __name__ == "__main__":
    main()
