"""Each finished attack's outcome kept in the report folder as it goes, so that a run killed at any
point (``kill -9`` included) resumes where it stopped: ``robustgen attack --resume DIR``.

One sealed file per attack (``outcomes/<kind>_<method>_eps<eps>_<target>.pt``, written atomically,
its SHA-256 checked on load: a damaged file is refused, never used) holding what the report needs of
it: predictions, reconstruction errors, the scores it is judged by, its budget and wall time (and an
oblivious attack's examples: the detector-aware attacks begin there). Every attack's randomness is
seeded by (seed, index of its batch's first input), not by what ran before, so a resumed run's report
equals an uninterrupted one's (wall times aside: a resumed attack keeps the seconds it took when it ran).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..checkpoint import CheckpointError, atomic_save, safe_load
from .outcomes import Outcome

FORMAT = "robustgen-outcome"
DIGESTS = "digests.json"  # the weights and data the kept outcomes were made with


class OutcomeStore:
    """``fetch(key, compute)``: the stored outcome of ``key`` (a tuple naming the attack), or
    ``compute()``'s, stored when the store may write (only rank 0 writes under torchrun)."""

    def __init__(self, folder: str | os.PathLike, write: bool = True, digests: dict | None = None):
        self.folder, self.write = Path(folder), write
        self.reused: list[str] = []  # names of the outcomes read back, for the report
        self.computed: list[str] = []
        if digests is not None:
            self._check_digests(digests)

    def _check_digests(self, digests: dict) -> None:
        """The outcomes kept here belong to one model and one draw of data (their SHA-256): kept ones of
        others are refused, never mixed in."""
        path = self.folder / DIGESTS
        if path.is_file():
            kept = json.loads(path.read_text())
            for key, value in digests.items():
                if kept.get(key) != value:
                    raise ValueError(f"{key.replace('_sha256', '')} differs from the one the interrupted run in "
                                     f"{self.folder.parent} evaluated (SHA-256); it cannot be resumed with other "
                                     "weights or data")
        elif self.write:
            self.folder.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(digests, indent=2) + "\n")

    def path(self, key: tuple) -> Path:
        name = "_".join("-" if part is None else f"{part!r}" if isinstance(part, float) else str(part) for part in key)
        return self.folder / (re.sub(r"[^A-Za-z0-9._=+-]", "-", name) + ".pt")

    def has(self, key: tuple) -> bool:
        return self.path(key).is_file()

    def fetch(self, key: tuple, compute: Callable[[], Outcome]) -> Outcome:
        path = self.path(key)
        if path.is_file():
            record = safe_load(path)
            if not isinstance(record, dict) or record.get("format") != FORMAT or record.get("key") != list(key):
                raise CheckpointError(f"{path} is not the kept outcome of {key}; move it away to attack again")
            self.reused.append(path.name)
            return Outcome(budget=record["budget"], pred=record["pred"].numpy(), err_pred=record["err_pred"].numpy(),
                           err_true=record["err_true"].numpy(), seconds=record["seconds"],
                           scores={k: v.numpy() for k, v in record["scores"].items()}, adv=record.get("adv"))
        out = compute()
        self.computed.append(path.name)
        if self.write:
            atomic_save({"format": FORMAT, "version": 1, "key": list(key), "budget": out.budget, "seconds": out.seconds,
                         "pred": torch.from_numpy(np.asarray(out.pred)), "err_pred": torch.from_numpy(np.asarray(out.err_pred)),
                         "err_true": torch.from_numpy(np.asarray(out.err_true)),
                         "scores": {k: torch.from_numpy(np.asarray(v)) for k, v in out.scores.items()},
                         "adv": out.adv}, path)
        return out


def fetch(store: OutcomeStore | None, key: tuple, compute: Callable[[], Outcome]) -> Outcome:
    """``store.fetch`` where there is a store, ``compute()`` where there is none."""
    return compute() if store is None else store.fetch(key, compute)
