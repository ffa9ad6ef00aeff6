"""The exported guarded model in a serving process without robustgen, against the Python detector.

Exports ``--checkpoint`` with ``--score`` (fitted at 5 % FPR on the validation split) through
``robustgen export --format torchscript`` (and ``onnx`` where onnxruntime is installed), then, in a
fresh isolated interpreter (``python -I``) that imports only torch or onnxruntime and numpy, scores the
first N test images and compares logits' predictions, flags and scores with ``Detector.detect``.

    python benchmarks/deploy_check.py --checkpoint robust-mnist --score confidence -n 10000 \\
        --json reports/benchmarks/deploy_check_cpu.json

Target (issue 31): the same predictions and flags on 10,000 test images, max score difference < 1e-5.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import robustgen

SERVER = """
import sys, time
import numpy as np
fmt, graph, images, out = sys.argv[1:5]
x = np.load(images)
start = time.perf_counter()
if fmt == "torchscript":
    import torch
    module = torch.jit.load(graph)
    with torch.no_grad():
        parts = [[t.numpy() for t in module(torch.from_numpy(x[i:i + 1000]))] for i in range(0, len(x), 1000)]
else:
    import onnxruntime
    session = onnxruntime.InferenceSession(graph, providers=["CPUExecutionProvider"])
    parts = [session.run(["logits", "score", "rejected"], {"images": x[i:i + 1000]}) for i in range(0, len(x), 1000)]
seconds = time.perf_counter() - start
assert "robustgen" not in sys.modules
np.savez(out, **{k: np.concatenate([p[j] for p in parts]) for j, k in enumerate(["logits", "score", "rejected"])},
         seconds=seconds)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default="robust-mnist")
    ap.add_argument("--score", default="confidence")
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("--json")
    args = ap.parse_args()
    formats = ["torchscript"]
    try:
        import onnxruntime  # noqa: F401
        formats.append("onnx")
    except ImportError:
        pass
    model = robustgen.load_model(args.checkpoint)
    data = model.meta["config"]["data"]
    x_val, _ = robustgen.load_dataset(data["dataset"], "val")
    x, _ = robustgen.load_dataset(data["dataset"], "test", limit=args.n)
    det = robustgen.make_detector(model, args.score).fit(x_val, fpr=0.05)
    report, flagged = det.detect(x)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        det.save(tmp / "det.pt")
        np.save(tmp / "x.npy", x.numpy())
        (tmp / "server.py").write_text(SERVER)
        for fmt in formats:
            subprocess.run([sys.executable, "-m", "robustgen", "export", "--format", fmt, "--detector", str(tmp / "det.pt"),
                            "--name", f"guard-{fmt}", "--out", str(tmp / "out")], check=True, capture_output=True)
            graph = tmp / "out" / f"guard-{fmt}.{'pt' if fmt == 'torchscript' else 'onnx'}"
            subprocess.run([sys.executable, "-I", str(tmp / "server.py"), fmt, str(graph), str(tmp / "x.npy"),
                            str(tmp / f"{fmt}.npz")], check=True, cwd=tmp, capture_output=True)
            got = np.load(tmp / f"{fmt}.npz")
            manifest = json.loads((tmp / "out" / f"guard-{fmt}.json").read_text())
            results[fmt] = {"n": int(len(x)), "max_score_difference": float(np.abs(got["score"] - report["scores"]).max()),
                            "predictions_differ": int((got["logits"].argmax(1) != report["predictions"]).sum()),
                            "flags_differ": int((got["rejected"] != flagged).sum()), "flagged": int(flagged.sum()),
                            "server_seconds": float(got["seconds"]), "threshold": manifest["threshold"],
                            "source": manifest["source"]}
    out = {"checkpoint": args.checkpoint, "score": args.score, **results}
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
