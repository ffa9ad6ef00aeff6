"""End-to-end speed of ``robustgen detect`` on a folder of PNG files, as a pipeline would run it.

Writes the first N MNIST test images as 28x28 PNG files into a temporary folder, then times the
whole command in a fresh process (start-up, model load, fitting the detector on the validation
split, reading and decoding every PNG, scoring, writing the CSV) and reports images per second.

    python benchmarks/detect_speed.py                       # 10,000 PNGs, the recon score, fast-mnist
    python benchmarks/detect_speed.py --score joint --json reports/benchmarks/detect_speed_cpu.json

Target: at least 1,000 images/s end to end for ``recon`` on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import robustgen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--score", default="recon")
    ap.add_argument("--checkpoint", default="fast-mnist")
    ap.add_argument("--json", help="also write the result to this JSON file")
    args = ap.parse_args()
    x, _ = robustgen.load_dataset("mnist", "test", limit=args.n)
    pixels = (x[:, 0].numpy() * 255).round().astype(np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "pngs"
        folder.mkdir()
        for i, img in enumerate(pixels):
            Image.fromarray(img).save(folder / f"{i:05d}.png")
        out = Path(tmp) / "scores.csv"
        cmd = [sys.executable, "-m", "robustgen", "detect", "--checkpoint", args.checkpoint, "--input", str(folder),
               "--out", str(out), "--score", args.score]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        seconds = time.perf_counter() - start
        rows = sum(1 for _ in out.open()) - 1
    result = {"n": rows, "score": args.score, "checkpoint": args.checkpoint, "seconds": seconds,
              "images_per_second": rows / seconds}
    print(f"robustgen detect, {rows} PNG files, score {args.score}: {seconds:.2f} s end to end, "
          f"{rows / seconds:,.0f} images/s")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
