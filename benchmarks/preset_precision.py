"""Time robustgen's training step of any preset in float32 and under bfloat16 autocast, in one process:
what ``train.precision = "auto"`` buys for that recipe on this machine (``train_speed.py`` sets the
paper network's recipes against a plain PyTorch loop; this one covers the other encoders and attacks).

    python benchmarks/preset_precision.py --config robust-mnist-conv4-pgd --steps 12 \\
        --json reports/benchmarks/preset_precision_conv4_pgd.json

Random images of the preset's dataset shape (the arithmetic does not depend on the pixels), the
preset's batch size, its adversary at full eps; two warm-up steps, then the median of ``--repeats``
runs of ``--steps`` steps. Prints seconds a step and the implied minutes an epoch of 55,000 images.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from robustgen.data import dataset_info
from robustgen.runs import native_bfloat16
from robustgen.training.adversary import InnerAttack
from robustgen.training.config import load_config
from robustgen.training.steps import EagerStep, make_optimizer
from robustgen.training.train import build_model

EPOCH_IMAGES = 55_000  # MNIST's and Fashion-MNIST's training split here (60,000 less 5,000 for validation)


def time_steps(cfg, precision: str, steps: int, repeats: int) -> list[float]:
    t = cfg.train
    info = dataset_info(cfg.data.dataset, cfg.data.data_dir)
    n = t.batch_size * steps
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, *info.shape, generator=gen)
    y = torch.randint(0, info.num_classes, (n,), generator=gen)
    torch.manual_seed(0)
    model = build_model(cfg, info, mean=(0.5,) * info.channels, std=(0.5,) * info.channels)
    optimizer = make_optimizer(model, t.lr, t.weight_decay, torch.device("cpu"), False)
    adversary = InnerAttack(cfg.adversary, torch.device("cpu")) if cfg.adversary.method != "none" else None
    runner = EagerStep(model, optimizer, x, y, batch_size=t.batch_size, alpha=t.alpha, noise_std=t.noise_std,
                       shift=t.shift, adversary=adversary, style=cfg.style, flip=t.flip, precision=precision)
    eps = [cfg.adversary.eps] * steps
    perm = torch.randperm(n, generator=gen)
    runner.run_epoch(perm[:2 * t.batch_size], [t.lr] * 2, gen, eps=eps[:2])  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runner.run_epoch(perm, [t.lr] * steps, gen, eps=eps)
        times.append((time.perf_counter() - start) / steps)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="robust-mnist-conv4-pgd", help="preset name or TOML file")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", help="also write the result to this JSON file")
    args = ap.parse_args()
    cfg = load_config(args.config)
    result = {"config": args.config, "batch_size": cfg.train.batch_size, "steps": args.steps, "repeats": args.repeats,
              "threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
              "native_bfloat16": native_bfloat16(torch.device("cpu")), "step_s": {}, "all_step_s": {}}
    for precision in ("float32", "bfloat16"):
        times = time_steps(cfg, precision, args.steps, args.repeats)
        result["step_s"][precision] = statistics.median(times)
        result["all_step_s"][precision] = times
        per_epoch = result["step_s"][precision] * (EPOCH_IMAGES // cfg.train.batch_size) / 60
        print(f"{args.config} {precision:8s}: {result['step_s'][precision]:.3f} s a step, about {per_epoch:.1f} min "
              f"an epoch of {EPOCH_IMAGES:,} images")
    result["bfloat16_speedup"] = result["step_s"]["float32"] / result["step_s"]["bfloat16"]
    print(f"bfloat16 {result['bfloat16_speedup']:.2f}x faster ({result['cpu_capability']}, "
          f"bfloat16 units: {result['native_bfloat16']})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
