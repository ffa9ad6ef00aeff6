"""Streaming ``robustgen detect`` at scale: memory, speed, and a ``kill -9`` halfway then ``--resume``.

Generates N 28 x 28 uint8 images into one ``.npy`` (MNIST test digits, each copy shifted by a seeded
random offset of up to 2 pixels and given seeded pixel noise, so that no two rows are equal), saves a
detector (fast-mnist, score ``recon``, fitted at 5 % FPR on the validation split), then in fresh
processes:

1. scores all N uninterrupted, recording wall time and the process's peak resident memory (VmHWM);
2. scores them again, sends SIGKILL once the CSV holds about half the rows, resumes with ``--resume``,
   and checks the final CSV against the first: byte for byte, every input exactly once.

    python benchmarks/detect_stream.py --n 1000000 --json reports/benchmarks/detect_stream_cpu.json

Targets (issue 31): peak memory under 1 GB, at least 1,000 images/s on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import robustgen

ROW_BYTES_ESTIMATE = 40  # a CSV row without its path, for "about half"


def generate(path: Path, n: int, seed: int = 0) -> None:
    """N images written a block at a time (the generator itself stays small too)."""
    x, _ = robustgen.load_dataset("mnist", "test")
    digits = (x[:, 0].numpy() * 255).round().astype(np.uint8)
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, 28, 28))
    block = 10000
    for start in range(0, n, block):
        k = min(block, n - start)
        base = digits[np.arange(start, start + k) % len(digits)].astype(np.int16)
        dy, dx = rng.integers(-2, 3, size=2)
        base = np.roll(base, (int(dy), int(dx)), axis=(1, 2))
        base += rng.integers(-8, 9, size=base.shape, dtype=np.int16)
        out[start:start + k] = base.clip(0, 255).astype(np.uint8)
    out.flush()
    del out


def high_water_mb(pid: int) -> float | None:
    """The process's peak resident memory so far (VmHWM), once it runs robustgen. Not ``wait4``'s
    ru_maxrss, which Linux carries over exec from the forked copy of this (large) benchmark process,
    and not a reading taken before the exec, which is that copy's."""
    try:
        if b"-m\x00robustgen\x00" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return None
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run(cmd: list[str], kill_at_bytes: int | None = None, watch: Path | None = None) -> dict:
    """Run ``cmd``; with ``kill_at_bytes``, SIGKILL it once ``watch`` is that big. Wall time, peak RSS
    (the high-water mark read every 20 ms until the process ends)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killed, peak = False, 0.0
    while proc.poll() is None:
        peak = max(peak, high_water_mb(proc.pid) or 0.0)
        if kill_at_bytes is not None and watch.exists() and watch.stat().st_size >= kill_at_bytes:
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.02)
    proc.wait()
    seconds = time.perf_counter() - start
    err = proc.stderr.read().decode()
    if not killed and proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err}")
    return {"seconds": seconds, "peak_rss_mb": peak, "exit": proc.returncode, "killed": killed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--score", default="recon")
    ap.add_argument("--checkpoint", default="fast-mnist")
    ap.add_argument("--dir", help="working folder (default: a temporary one, removed after)")
    ap.add_argument("--json", help="also write the result to this JSON file")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        tmp = Path(tmp)
        images = tmp / "images.npy"
        t = time.perf_counter()
        generate(images, args.n)
        generated = time.perf_counter() - t
        x_val, _ = robustgen.load_dataset("mnist", "val")
        det = robustgen.make_detector(robustgen.load_model(args.checkpoint), args.score).fit(x_val, fpr=0.05)
        det.save(tmp / "det.pt")
        base = [sys.executable, "-m", "robustgen", "detect", "--detector", str(tmp / "det.pt"), "--input", str(images),
                "--uint8", "--quiet", "--out"]
        full = run(base + [str(tmp / "full.csv")])
        size = (tmp / "full.csv").stat().st_size
        cut = run(base + [str(tmp / "cut.csv")], kill_at_bytes=size // 2, watch=tmp / "cut.csv")
        rows_at_kill = sum(1 for _ in (tmp / "cut.csv").open()) - 1
        resumed = run(base + [str(tmp / "cut.csv"), "--resume"])
        same = (tmp / "cut.csv").read_bytes() == (tmp / "full.csv").read_bytes()
        indices = np.loadtxt(tmp / "cut.csv", delimiter=",", skiprows=1, usecols=1, dtype=np.int64)
        once = bool(np.array_equal(indices, np.arange(args.n)))
    result = {"n": args.n, "score": args.score, "checkpoint": args.checkpoint, "generate_seconds": generated,
              "uninterrupted": {**full, "images_per_second": args.n / full["seconds"]},
              "killed": {**cut, "rows_at_kill": rows_at_kill}, "resumed": resumed,
              "resumed_equals_uninterrupted": same, "every_input_exactly_once": once, "cpu_threads": os.cpu_count()}
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
