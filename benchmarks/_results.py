"""What the diagnostic benchmarks share: naming a run and adding results to a JSON file."""

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
