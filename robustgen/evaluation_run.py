"""One call: the adaptive worst case of any detection defence, as ``robustgen attack`` reports it.

    report = robustgen.evaluate(model, x_val, x, y, scores=["energy", my_score_fn], eps=[0.1, 0.3],
                                attacks="strong", out="reports/mine")
    report["worst_case"]                 # what an attacker gets, per eps and score (read_report's shape)

``model`` is any ``torch.nn.Module`` mapping float images (N, C, H, W) in [0, 1] to logits (through
:func:`robustgen.as_classifier`); a score is a name (``confidence``, ``energy``, ``max-logit``,
``entropy``, ``mahalanobis`` with ``feature_layer=``, ``magnet`` with ``autoencoder=``; the decoder
scores on robustgen's own network), a function ``fn(x) -> (N,)`` (named by its ``__name__``), a
``{name: fn}`` dict, or a Detector. Thresholds are fitted on ``x_val`` at ``fpr`` and frozen; every
attack and table counts an input as broken when it is misclassified and not flagged.

This sits above ``evaluation`` and ``reports`` (it runs the one and writes the other); the CLI's
``attack`` command goes through :func:`run_and_report` too.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .attacks import ATTACKS, STRONG, check_clean, check_precision, parse_eps, parse_eps_list
from .classifier import as_classifier
from .detectors.detector import Detector, make_detector
from .detectors.registry import AUTOENCODER_SCORES
from .evaluation.benchmark import run_benchmark
from .evaluation.compare import read_report
from .evaluation.store import OutcomeStore
from .integrity import sha256_state, sha256_tensors
from .model import check_class_count
from .reports.detection import write_detection_report

OUTCOMES = "outcomes"


def run_and_report(model, x_val, x, y, entries: list, *, methods: list[str], eps_list: list[float], out: Path | None,
                   meta: dict, fpr: float = 0.05, batch_size: int = 500, attack_kwargs: dict | None = None,
                   sanity_n: int = 200, seed: int = 0, autoencoder=None, store: OutcomeStore | None = None,
                   write: bool = True, on_attack: Callable | None = None, on_stage: Callable | None = None,
                   full: bool = False):
    """Run the benchmark (a cascade unless ``full``) and, where ``write``, write its report into ``out``
    (then drop the kept outcomes: the report holds all they held). Returns the BenchmarkResult."""
    result = run_benchmark(model, x_val, x, y, methods=methods, eps_list=eps_list, scores=entries, fpr=fpr,
                           batch_size=batch_size, attack_kwargs=attack_kwargs or {}, sanity_n=sanity_n,
                           on_attack=on_attack, on_stage=on_stage, seed=seed, autoencoder=autoencoder, store=store,
                           full=full)
    if write:
        meta = {**meta, "n": len(x), "n_val": len(x_val), "fpr": fpr, "methods": methods, "eps": eps_list,
                "cascade": result.cascade, "order": result.order,
                "scores": list(result.clean_flagged), "seed": seed, "sanity_n": sanity_n, "budget": result.budgets,
                **(attack_kwargs or {}), "resumed_attacks": len(store.reused) if store is not None else 0}
        write_detection_report(result, out, meta)
        shutil.rmtree(Path(out) / OUTCOMES, ignore_errors=True)
    return result


def run_digests(model, x_val, x, y, autoencoder=None) -> dict:
    """SHA-256 of what a run evaluates (weights, data, autoencoder): recorded in the report, and what a
    resumed run must match."""
    digests = {"model_sha256": sha256_state(model), "data_sha256": sha256_tensors(x_val, x, y)}
    if autoencoder is not None:
        digests["autoencoder_sha256"] = sha256_state(autoencoder)
    return digests


def _tensor(a, what: str) -> torch.Tensor:
    if isinstance(a, np.ndarray):
        a = torch.from_numpy(np.ascontiguousarray(a))
    if not isinstance(a, torch.Tensor):
        raise ValueError(f"{what} must be a torch tensor or numpy array, got {type(a).__name__}")
    return a


def score_entries(model, scores, autoencoder=None) -> list:
    """Names, Detectors, functions and {name: function} dicts as Detectors for run_benchmark."""
    if isinstance(scores, (str, dict)) or callable(scores) or isinstance(scores, Detector):
        scores = [scores]
    entries = []
    for s in scores:
        if isinstance(s, dict):
            entries += [Detector.from_function(model, fn, name) for name, fn in s.items()]
        elif isinstance(s, str):  # a detector now: a score the model cannot serve is refused before anything runs
            entries.append(make_detector(model, s, autoencoder=autoencoder if s in AUTOENCODER_SCORES else None))
        elif isinstance(s, Detector):
            entries.append(s)
        elif callable(s):
            entries.append(Detector.from_function(model, s, getattr(s, "__name__", "function")))
        else:
            raise ValueError(f"a score is a name, a function, a {{name: function}} dict or a Detector; got {type(s).__name__}")
    return entries


def evaluate(model, x_val, x, y, *, scores=("confidence",), eps=(0.1, 0.2, 0.3), attacks="strong",
             out: str | os.PathLike, fpr: float = 0.05, feature_layer: str | None = None, autoencoder=None,
             batch_size: int = 500, sanity_n: int = 200, seed: int = 0, steps: int | None = None,
             step_size: float | None = None, queries: int | None = None, search_steps: int = 5,
             targets: str = "all", resume: bool = False, name: str | None = None, full: bool = False,
             precision: str = "float32") -> dict:
    """Attack ``(x, y)`` with ``attacks`` (``"strong"`` or a list of names) at every ``eps`` against
    every score, thresholds fitted on ``x_val`` at ``fpr``; write the report folder ``robustgen attack``
    writes into ``out`` (new or empty; with ``resume=True`` an interrupted one, whose finished attacks
    are kept and not run again) and return it as :func:`robustgen.read_report` does. Each attack runs
    only on the inputs still standing for its score (a cascade); ``full=True`` runs every attack on
    every input, for per-attack tables; ``precision="bfloat16"`` runs the attacks' passes under bfloat16
    autocast (outcomes judged in float32)."""
    x_val, x, y = _tensor(x_val, "x_val"), _tensor(x, "x"), _tensor(y, "y")
    check_clean(x, y, batch_size)
    check_clean(x_val, torch.zeros(len(x_val), dtype=torch.long), batch_size)
    if x_val.shape[1:] != x.shape[1:]:
        raise ValueError(f"x_val images are {tuple(x_val.shape[1:])}, x images {tuple(x.shape[1:])}; give one shape")
    model = as_classifier(model, x.shape[1:], feature_layer=feature_layer, name=name)
    check_class_count(model, y, "y")
    device = next(model.parameters()).device
    check_precision(precision)  # before anything is fitted or written into ``out``
    methods = list(STRONG) if attacks == "strong" else [attacks] if isinstance(attacks, str) else list(attacks)
    for m in methods:
        if m not in ATTACKS:
            raise ValueError(f"unknown attack {m!r}; use one of {', '.join(ATTACKS)} or 'strong'")
    eps_list = parse_eps_list(eps) if isinstance(eps, str) else sorted({parse_eps(e) for e in eps})
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out {out} is a file, not a folder")
    if out.exists() and any(out.iterdir()) and not resume:
        raise ValueError(f"out {out} is not empty; choose a new folder so no earlier report is overwritten (or resume=True "
                         "to continue an interrupted call)")
    if (out / "detection.csv").exists():
        raise ValueError(f"{out} holds a finished report; choose a new folder")
    entries = score_entries(model, scores, autoencoder)
    digests = run_digests(model, x_val, x, y, autoencoder)
    store = OutcomeStore(out / OUTCOMES, write=True, digests=digests)
    kwargs = {"steps": steps, "step_size": step_size, "queries": queries, "search_steps": search_steps, "targets": targets,
              "precision": precision}
    torch.manual_seed(seed)
    meta = {"checkpoint": str(model.meta.get("path")), "dataset": (model.meta.get("dataset") or {}).get("name", "given"),
            "autoencoder": str(autoencoder.meta.get("path")) if autoencoder is not None else None,
            "device": str(device), "processes": 1, **digests}
    run_and_report(model, x_val, x, y, entries, methods=methods,
                   eps_list=eps_list, out=out, meta=meta, fpr=fpr, batch_size=batch_size, attack_kwargs=kwargs,
                   sanity_n=sanity_n, seed=seed, autoencoder=autoencoder, store=store, full=bool(full))
    return read_report(out)
