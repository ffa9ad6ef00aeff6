"""What the diagnostic benchmarks share: naming a run, adding results to a JSON file, the
optimizer of a training trial, and a model's predicted labels in batches."""

from __future__ import annotations

import json
from pathlib import Path


def run_name(checkpoint: str) -> str:
    """The run folder's name, given the folder or the ``checkpoint.pt`` inside it."""
    path = Path(checkpoint)
    return path.parent.name if path.suffix == ".pt" else path.name


def add_results(path: str, entries: dict) -> None:
    """Merge ``entries`` into the JSON object at ``path`` (created if missing), keeping other keys."""
    try:
        with open(path) as f:
            results = json.load(f)
    except FileNotFoundError:
        results = {}
    results.update(entries)
    with open(path, "w") as f:
        json.dump(results, f, indent=2)


def trial_optimizer(model, cfg):
    """Plain Adam at ``cfg.train.lr``, as the committed trials used (not the fused kernel of
    ``robustgen.training.steps.make_optimizer``, so they reproduce); AdamW when the trial sets train.weight_decay."""
    import torch

    wd = cfg.train.weight_decay
    if wd:
        return torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=wd)
    return torch.optim.Adam(model.parameters(), lr=cfg.train.lr)


def emit(result: dict, path: str | None) -> None:
    """Print ``result`` as JSON and, where ``path`` is given, write it there too."""
    text = json.dumps(result, indent=2)
    print(text)
    if path:
        Path(path).write_text(text + "\n")


def predict(model, x, batch_size: int):
    """The model's predicted labels for ``x``, ``batch_size`` images at a time, without gradients."""
    import torch

    with torch.no_grad():
        return torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])
