"""A classifier that is not robustgen's, to evaluate as any user would evaluate their own: a plain
CNN (two 3x3 convolutions with max pooling, FC 128, FC 10; normalisation inside), its factory for
``--model benchmarks.plain_cnn:build``, and the script that trains it.

    python benchmarks/plain_cnn.py --out runs/plain-cnn        # ~99 % on MNIST test, a few minutes on 2 cores
    robustgen attack --model benchmarks.plain_cnn:build --dataset mnist --feature-layer fc1 \\
        --score ood-msp,ood-energy,ood-mahalanobis,benchmarks.plain_cnn:squeeze --method strong ...

``build()`` loads the weights from ``$PLAIN_CNN_WEIGHTS`` (default ``runs/plain-cnn/plain_cnn.pt``);
the script also writes ``plain_cnn.torchscript.pt`` for ``--model FILE``. Only torch is needed to
define, load or run it: nothing here imports robustgen except the training script's data loading.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_WEIGHTS = "runs/plain-cnn/plain_cnn.pt"


class PlainCNN(nn.Module):
    """x (N, 1, 28, 28) in [0, 1] -> logits (N, 10)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(0.1307))
        self.register_buffer("std", torch.tensor(0.3081))
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.relu = nn.ReLU()  # a module, so that the features after it can be named: --feature-layer relu
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = (x - self.mean) / self.std
        h = F.max_pool2d(F.relu(self.conv1(h)), 2)  # (N, 32, 14, 14)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)  # (N, 64, 7, 7)
        return self.fc2(self.relu(self.fc1(h.flatten(1))))


def build() -> nn.Module:
    """The trained plain CNN (eval mode): the factory ``--model benchmarks.plain_cnn:build`` calls."""
    path = Path(os.environ.get("PLAIN_CNN_WEIGHTS", DEFAULT_WEIGHTS))
    if not path.is_file():
        raise FileNotFoundError(f"no weights at {path}; train them with python benchmarks/plain_cnn.py --out {path.parent}")
    model = PlainCNN()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def squeeze(model: nn.Module):
    """A detector written as a function, for ``--score benchmarks.plain_cnn:squeeze``: feature squeezing
    (Xu, Evans & Qi 2018) with a 2x2 local-mean smoothing as the squeezer; the score is the L1 distance
    between the softmax of x and of its smoothed copy (differentiable, so the attacks follow it)."""

    def score(x: torch.Tensor) -> torch.Tensor:
        smoothed = F.avg_pool2d(F.pad(x, (0, 1, 0, 1), mode="replicate"), 2, stride=1)
        return (model(x).softmax(1) - model(smoothed).softmax(1)).abs().sum(1)

    return score


def train(out: Path, epochs: int, seed: int) -> dict:
    import robustgen

    torch.manual_seed(seed)
    x, y = robustgen.load_dataset("mnist", "train")
    x_test, y_test = robustgen.load_dataset("mnist", "test")
    model = PlainCNN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x))
        for i in range(0, len(x) - 127, 128):
            idx = perm[i:i + 128]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        acc = float(torch.cat([model(x_test[i:i + 1000]).argmax(1) for i in range(0, len(x_test), 1000)]).eq(y_test)
                    .double().mean())
    out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out / "plain_cnn.pt")
    torch.jit.save(torch.jit.script(model), str(out / "plain_cnn.torchscript.pt"))
    record = {"epochs": epochs, "seed": seed, "train_images": len(x), "test_accuracy": acc, "seconds": seconds}
    (out / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(Path(DEFAULT_WEIGHTS).parent))
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print(json.dumps(train(Path(a.out), a.epochs, a.seed), indent=2))
