"""Time one training epoch of robustgen against the plainest PyTorch loop, in one process, and set
the achieved arithmetic rate against the CPU's (or GPU's) matrix-multiply peak measured in the same run.

Both train the same network (the paper's style-memory net) on the same MNIST images with the same
objective at the same batch size. ``--recipe clean`` is fast-mnist's work (cross-entropy + 0.05 * L2
reconstruction, Gaussian input noise 0.1, Adam); ``--recipe robust`` is robust-mnist's (PGD-5 at eps
0.3 with step 0.15 and a random start on every batch, cross-entropy on the attacked batch, the
reconstruction of the clean and the attacked branch). The reference is what most people write: a
DataLoader over a TensorDataset, float32 eager steps, ``loss.item()`` every step. robustgen keeps the
data on the device, never syncs inside the epoch, on CUDA replays the step as a CUDA graph, and with
``train.precision = "bfloat16"`` runs the step under bfloat16 autocast (float32 weights).

    python benchmarks/train_speed.py --recipe robust --precision float32,bfloat16 --images 8192 \
        --json reports/benchmarks/train_speed_robust_cpu.json

``--variants channels-last,compile`` also times the plain loop with channels-last memory format and
with its loss under ``torch.compile`` (what torch offers besides precision), each as a ratio to it.

Prints the median epoch time of each and the ratio robustgen / reference (< 1 means faster), and the
GFLOP/s each achieved (FLOPs of one step counted by torch's FlopCounterMode) against the peak of a
large matrix product in float32 and bfloat16.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

import robustgen
from robustgen.runs import native_bfloat16, resolve_device

ALPHA, NOISE, LR = 0.05, 0.1, 1e-3
EPS, PGD_STEPS, PGD_STEP = 0.3, 5, 0.15


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def pgd(model, x, y, counting: bool = False):
    """PGD-5 as plainly written: random start, signed steps, projection. ``counting``: the same
    arithmetic through ``backward()`` with the weights frozen (torch's FlopCounterMode cannot see
    inside ``autograd.grad``)."""
    adv = (x + torch.empty_like(x).uniform_(-EPS, EPS)).clamp(0, 1)
    for _ in range(PGD_STEPS):
        adv = adv.detach().requires_grad_(True)
        if counting:
            flags = [p.requires_grad for p in model.parameters()]
            for p in model.parameters():
                p.requires_grad_(False)
            F.cross_entropy(model(adv), y).backward()
            for p, f in zip(model.parameters(), flags):
                p.requires_grad_(f)
            g = adv.grad
        else:
            (g,) = torch.autograd.grad(F.cross_entropy(model(adv), y), adv)
        adv = torch.min(torch.max(adv.detach() + PGD_STEP * g.sign(), x - EPS), x + EPS).clamp(0, 1)
    return adv.detach()


def reference_loss(model, xb, yb, robust: bool, counting: bool = False):
    noisy = (xb + NOISE * torch.randn_like(xb)).clamp(0, 1)
    logits, style = model.encode(noisy)
    rec = robustgen.recon_error(xb, model.decode(logits.softmax(1), style)).mean()
    if not robust:
        return F.cross_entropy(logits, yb) + ALPHA * rec
    adv = pgd(model, xb, yb, counting)
    logits_adv, style_adv = model.encode(adv)
    rec_adv = robustgen.recon_error(xb, model.decode(logits_adv.softmax(1), style_adv)).mean()
    return F.cross_entropy(logits_adv, yb) + ALPHA * 0.5 * (rec + rec_adv)


VARIANTS = ("channels-last", "compile")  # what torch offers besides precision, tried on the plain loop


def reference_epoch(model, x, y, batch_size: int, device: torch.device, robust: bool, variant: str = "") -> float:
    """The plainest loop: DataLoader over CPU tensors, batches moved to the device, float32 eager
    steps, loss.item() each step. ``variant``: the same loop with the weights and batches in
    channels-last memory format, or with the loss (forward and inner attack) under torch.compile."""
    loss_fn = reference_loss
    if variant == "channels-last":
        model = model.to(memory_format=torch.channels_last)
    elif variant == "compile":
        loss_fn = torch.compile(reference_loss)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True, drop_last=True)
    model.train()
    sync(device)
    start = time.perf_counter()
    total = 0.0
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        if variant == "channels-last":
            xb = xb.contiguous(memory_format=torch.channels_last)
        loss = loss_fn(model, xb, yb, robust)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item()
    sync(device)
    return time.perf_counter() - start


def config(args, precision: str):
    sets = [f"train.batch_size={args.batch_size}", "train.epochs=1", f"train.lr={LR}", f"train.noise_std={NOISE}",
            f"train.alpha={ALPHA}", f"train.precision={precision}"]
    if args.recipe == "robust":
        sets += ["adversary.method=pgd", f"adversary.eps={EPS}", f"adversary.steps={PGD_STEPS}", "adversary.ramp_epochs=0"]
    return robustgen.load_config(None, sets)


def robustgen_epoch(cfg, model, x, y, val, device: torch.device) -> float:
    from robustgen.training.steps import make_optimizer

    opt = make_optimizer(model, LR, 0.0, device, graph=(device.type == "cuda" and cfg.train.cuda_graph))
    times = []
    robustgen.fit(model, opt, cfg, (x, y), val, on_epoch_end=lambda stats: times.append(stats["epoch_seconds"]))
    return times[-1]


def step_flops(model, x, y, robust: bool) -> int:
    """FLOPs of one training step (forward, the inner attack, backward) on one batch, counted by torch."""
    with FlopCounterMode(display=False) as counter:
        reference_loss(model, x, y, robust, counting=True).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int = 1024, repeats: int = 10) -> float:
    """GFLOP/s of an n x n matrix product in ``dtype``: the hardware's practical peak for dense work."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * n ** 3 * repeats / (time.perf_counter() - start) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--recipe", default="clean", choices=["clean", "robust"])
    ap.add_argument("--precision", default="float32", help="robustgen's precisions to time, comma-separated")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--variants", default="", help=f"also time the plain loop with these, comma-separated: "
                    f"{', '.join(VARIANTS)}")
    ap.add_argument("--repeats", type=int, default=3, help="epochs timed per side (median reported)")
    ap.add_argument("--images", type=int, default=55000, help="training images per epoch")
    ap.add_argument("--json", help="also write the result to this JSON file")
    args = ap.parse_args()
    device = resolve_device(args.device)
    robust = args.recipe == "robust"
    precisions = args.precision.split(",")
    variants = [v for v in args.variants.split(",") if v]
    if set(variants) - set(VARIANTS):
        ap.error(f"--variants: unknown {sorted(set(variants) - set(VARIANTS))}; use {', '.join(VARIANTS)}")
    x_cpu, y_cpu = robustgen.load_dataset("mnist", "train", limit=args.images)  # the reference's DataLoader
    x, y = x_cpu.to(device), y_cpu.to(device)  # robustgen keeps the whole set on the device
    val = tuple(t.to(device) for t in robustgen.load_dataset("mnist", "val", limit=1000))
    cfgs = {p: config(args, p) for p in precisions}
    ref_times, ours, tried = [], {p: [] for p in precisions}, {v: [] for v in variants}
    for r in range(args.repeats + 1):  # first round warms up allocators and kernels; not counted
        torch.manual_seed(r)
        model = robustgen.StyleMemoryNet(robustgen.ModelSpec(num_classes=10)).to(device)
        t_ref = reference_epoch(model, x_cpu, y_cpu, args.batch_size, device, robust)
        if r:
            ref_times.append(t_ref)
        for v in variants:  # the first round also compiles: not counted
            torch.manual_seed(r)
            model = robustgen.StyleMemoryNet(robustgen.ModelSpec(num_classes=10)).to(device)
            t = reference_epoch(model, x_cpu, y_cpu, args.batch_size, device, robust, v)
            if r:
                tried[v].append(t)
        for p in precisions:
            torch.manual_seed(r)
            model = robustgen.StyleMemoryNet(robustgen.ModelSpec(num_classes=10)).to(device)
            t = robustgen_epoch(cfgs[p], model, x, y, val, device)
            if r:
                ours[p].append(t)
    steps = x.shape[0] // args.batch_size
    flops = step_flops(model, x[:args.batch_size], y[:args.batch_size], robust) * steps
    ref = statistics.median(ref_times)
    # the peak of each precision timed (a CPU without bfloat16 units emulates it: minutes for one large product)
    peaks = {p: matmul_peak(device, getattr(torch, p)) for p in {"float32", *precisions}}
    result = {"device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
              "native_bfloat16": native_bfloat16(device), "recipe": args.recipe, "batch_size": args.batch_size,
              "images": x.shape[0], "epoch_gflop": flops / 1e9, "matmul_peak_gflops": peaks,
              "reference_epoch_s": ref, "reference_all_s": ref_times, "reference_gflops": flops / ref / 1e9,
              "robustgen": {}}
    print(f"device {result['device_name']}, recipe {args.recipe}, batch {args.batch_size}, {x.shape[0]} images/epoch "
          f"({flops / 1e9:.0f} GFLOP), median of {args.repeats}; matmul peak "
          + ", ".join(f"{v:.0f} GFLOP/s {k}" for k, v in peaks.items()))
    print(f"  plain float32 loop    : {ref:.3f} s/epoch, {flops / ref / 1e9:.1f} GFLOP/s")
    result["variants"] = {}
    for v in variants:
        t = statistics.median(tried[v])
        result["variants"][v] = {"epoch_s": t, "all_s": tried[v], "ratio": t / ref, "gflops": flops / t / 1e9}
        print(f"  plain loop, {v:<10}: {t:.3f} s/epoch, {flops / t / 1e9:.1f} GFLOP/s; ratio {t / ref:.3f}")
    for p in precisions:
        mine = statistics.median(ours[p])
        result["robustgen"][p] = {"epoch_s": mine, "all_s": ours[p], "ratio": mine / ref, "gflops": flops / mine / 1e9,
                                  "share_of_peak": flops / mine / 1e9 / peaks[p]}
        print(f"  robustgen {p:<10}: {mine:.3f} s/epoch, {flops / mine / 1e9:.1f} GFLOP/s "
              f"({100 * flops / mine / 1e9 / peaks[p]:.0f} % of the {p} peak); ratio {mine / ref:.3f}")
    if len(precisions) == 1:  # the keys of the earlier, one-precision reports
        result.update(robustgen_epoch_s=result["robustgen"][precisions[0]]["epoch_s"],
                      ratio=result["robustgen"][precisions[0]]["ratio"])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
