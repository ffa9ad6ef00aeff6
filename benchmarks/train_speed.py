"""Time one training epoch of robustgen against the plainest PyTorch loop, in one process.

Both train the same network (the paper's style-memory net) on the same MNIST images with the same
objective (cross-entropy + 0.05 * L2 reconstruction, Gaussian input noise 0.1, Adam) at the same
batch size. The reference is what most people write: a DataLoader over a TensorDataset, a fresh
noise tensor per batch and ``loss.item()`` every step. robustgen keeps the data on the device,
never syncs inside the epoch, and on CUDA replays the step as a CUDA graph.

    python benchmarks/train_speed.py                  # CPU or GPU, whatever is there
    python benchmarks/train_speed.py --device cuda --repeats 5

Prints the median epoch time of each and the ratio robustgen / reference (< 1 means faster).
Targets: ratio <= 1.0 on the CPU; on a GPU the CUDA-graph step at least 5x faster (ratio <= 0.2).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import robustgen
from robustgen.runs import resolve_device

ALPHA, NOISE, LR = 0.05, 0.1, 1e-3


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reference_epoch(model, x, y, batch_size: int, device: torch.device) -> float:
    """The plainest loop: DataLoader over CPU tensors, batches moved to the device, eager steps,
    loss.item() each step."""
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True, drop_last=True)
    model.train()
    sync(device)
    start = time.perf_counter()
    total = 0.0
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        noisy = (xb + NOISE * torch.randn_like(xb)).clamp(0, 1)
        logits, style = model.encode(noisy)
        x_hat = model.decode(logits.softmax(1), style)
        loss = F.cross_entropy(logits, yb) + ALPHA * robustgen.recon_error(xb, x_hat).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item()
    sync(device)
    return time.perf_counter() - start


def robustgen_epoch(cfg, model, x, y, val, device: torch.device) -> float:
    from robustgen.training.steps import make_optimizer

    opt = make_optimizer(model, LR, 0.0, device, graph=(device.type == "cuda" and cfg.train.cuda_graph))
    times = []

    def record(stats):  # epoch_seconds is measured inside fit, excluding validation
        times.append(stats["epoch_seconds"])

    robustgen.fit(model, opt, cfg, (x, y), val, on_epoch_end=record)
    return times[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3, help="epochs timed per side (median reported)")
    ap.add_argument("--images", type=int, default=55000, help="training images per epoch")
    ap.add_argument("--json", help="also write the result to this JSON file")
    args = ap.parse_args()
    device = resolve_device(args.device)
    x_cpu, y_cpu = robustgen.load_dataset("mnist", "train", limit=args.images)  # the reference's DataLoader
    x, y = x_cpu.to(device), y_cpu.to(device)  # robustgen keeps the whole set on the device
    val = tuple(t.to(device) for t in robustgen.load_dataset("mnist", "val", limit=1000))
    # robustgen's fit() times the whole epoch (kernels included) and excludes validation. With one
    # epoch per fit() call, a CUDA graph is captured once per call: its capture (3 warm-up steps)
    # is counted too, which slightly favours the reference.
    cfg = robustgen.load_config(None, [f"train.batch_size={args.batch_size}", "train.epochs=1",
                                       f"train.lr={LR}", f"train.noise_std={NOISE}", f"train.alpha={ALPHA}"])
    ref_times, ours = [], []
    for r in range(args.repeats + 1):  # first round warms up allocators and kernels; not counted
        torch.manual_seed(r)
        model = robustgen.StyleMemoryNet(robustgen.ModelSpec(num_classes=10)).to(device)
        t_ref = reference_epoch(model, x_cpu, y_cpu, args.batch_size, device)
        torch.manual_seed(r)
        model = robustgen.StyleMemoryNet(robustgen.ModelSpec(num_classes=10)).to(device)
        t_ours = robustgen_epoch(cfg, model, x, y, val, device)
        if r:
            ref_times.append(t_ref)
            ours.append(t_ours)
    ref, mine = statistics.median(ref_times), statistics.median(ours)
    result = {"device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "threads": torch.get_num_threads(), "batch_size": args.batch_size, "images": x.shape[0],
              "reference_epoch_s": ref, "robustgen_epoch_s": mine, "ratio": mine / ref,
              "reference_all_s": ref_times, "robustgen_all_s": ours}
    print(f"device {result['device_name']}, batch {args.batch_size}, {x.shape[0]} images/epoch, "
          f"median of {args.repeats}")
    print(f"  plain PyTorch loop : {ref:.3f} s/epoch")
    print(f"  robustgen          : {mine:.3f} s/epoch")
    print(f"  ratio robustgen/reference = {mine / ref:.3f}  (speed-up {ref / mine:.2f}x)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
