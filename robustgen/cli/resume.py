"""``robustgen attack --resume DIR``: the record of a run's options and of what it evaluated, kept in
its report folder from the start, so that a run killed at any point continues with exactly the same
options, model and data (the kept outcomes themselves: :mod:`robustgen.evaluation.store`)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

RECORD = "run.json"
# the options that define a run; with --resume only --device and --quiet may be given
FIXED = ("checkpoint", "model", "dataset", "feature_layer", "runs_dir", "data_dir", "autoencoder", "method", "eps",
         "score", "n", "n_val", "fpr", "steps",
         "step_size", "queries", "search_steps", "targets", "sanity_n", "batch_size", "seed", "out", "full",
         "precision")


def defaults_of(parser) -> dict:
    return {name: parser.get_default(name) for name in FIXED}


def apply_record(args, defaults: dict) -> dict:
    """Set ``args``' options from the record in ``args.resume``; refuse an option given anew. Returns
    the record (its ``digests`` are checked once the model and data are loaded)."""
    folder = Path(args.resume)
    path = folder / RECORD
    if (folder / "detection.csv").is_file():
        raise ValueError(f"the run in {folder} has finished: its report is there; start a new run to attack again")
    if not path.is_file():
        raise ValueError(f"{folder} holds no {RECORD}: not the folder of an interrupted `robustgen attack` run")
    try:
        record = json.loads(path.read_text())
        options = record["options"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path} cannot be read ({e}); the run cannot be resumed") from None
    if record.get("sha256") != _digest(record):
        raise ValueError(f"{path}: SHA-256 does not match the one recorded in it; it was changed after robustgen "
                         "wrote it, and the run cannot be resumed from it")
    given = [f"--{k.replace('_', '-')}" for k in FIXED if getattr(args, k) != defaults[k] and getattr(args, k) != options.get(k)]
    if given:
        raise ValueError(f"{', '.join(given)} cannot change a run being resumed; only --device and --quiet can")
    for k in FIXED:  # a key a record made before it existed held its default
        setattr(args, k, options.get(k, defaults[k]))
    args.out = str(folder)
    return record


def write_record(folder: Path, args, checkpoint: str | None, digests: dict) -> None:
    """``checkpoint``: the resolved --checkpoint (the newest run when none was given); None for --model."""
    options = {k: getattr(args, k) for k in FIXED}
    options.update(checkpoint=checkpoint, out=str(folder))
    folder.mkdir(parents=True, exist_ok=True)
    record = {"options": options, "digests": digests}
    (folder / RECORD).write_text(json.dumps({**record, "sha256": _digest(record)}, indent=2) + "\n")


def _digest(record: dict) -> str:
    """SHA-256 of a record's options and digests, as canonical JSON (keys sorted)."""
    body = {"options": record.get("options"), "digests": record.get("digests")}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
