"""The adversarial-input detectors, in the shape of ART's detector API.

    det = ReconstructionDetector(model, score="recon")     # the paper's: label-conditioned reconstruction
    det.fit(x_val_clean, fpr=0.05)          # threshold from clean data at the requested FPR
    scores = det.score(x)                   # numpy (N,), higher = more suspicious
    report, is_adv = det.detect(x)          # report: scores, threshold, predictions, confidences
    det.save("detector.pt"); det = Detector.load("detector.pt")

One class, :class:`Detector`, thresholds any score; the subclasses name what they are:
``ReconstructionDetector`` (the style-memory decoder's scores), ``ConfidenceDetector`` (the
classifier alone), ``MahalanobisDetector`` (features, no decoder) and ``MagnetDetector`` (a
class-agnostic autoencoder, no label). ``make_detector(model, score)`` picks the class for a score.

Inputs: torch tensors or numpy arrays of the model's shape, (N, C, H, W), or (N, H, W, C) and for
one-channel models (N, H, W), as ART users pass them; float, in [0, 1].
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

from .. import checkpoint as ckpt_io
from ..model import StyleMemoryNet
from .baselines import check_autoencoder
from .checks import as_images, threshold_at_fpr, to_model_layout  # noqa: F401 - to_model_layout: the public name
from .registry import CLASSIFIER_SCORES, SCORES, check_score_name, make_score
from .scores import Score

DETECTOR_FORMAT = "robustgen-detector"


class ThresholdTieWarning(UserWarning):
    """The fitted threshold flags far fewer clean inputs than asked, because many share its score."""


def natural_unit(clean: np.ndarray, threshold: float) -> float:
    """The score's natural unit, which the detector-aware attacks measure it in: the threshold minus
    the clean median; where the two coincide (a score so discrete that its clean median is the
    threshold: rounded, quantised), the clean scores' standard deviation, not a vanishing gap (with
    which the reject logit of ``GuardedClassifier`` would be 10^4 per quantum and saturate every
    softmax); never below 1e-6 of the threshold's size."""
    floor = 1e-6 * max(abs(threshold), 1.0)
    gap = threshold - float(np.median(clean))
    if gap >= floor:
        return gap
    return max(float(np.std(clean)), floor)


class Detector:
    """Flags inputs whose detector score exceeds a threshold fitted on clean data.

    Args:
        model: a trained :class:`StyleMemoryNet` classifier (e.g. from ``robustgen.load_model``).
        score: a name from ``robustgen.detectors.registry.SCORES`` ("recon", "confidence",
            "joint-sum", "mahalanobis", "magnet", ...); default: the class's own.
        batch_size: images per forward pass when scoring.
        autoencoder: the label-free autoencoder of the ``magnet`` scores (and only theirs).
    """

    default_score = "recon"
    family: tuple[str, ...] = ()  # the scores this class is named for (empty: any)

    def __init__(self, model: StyleMemoryNet, score: str | Score | None = None, batch_size: int = 500,
                 autoencoder: StyleMemoryNet | None = None):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a whole number of at least 1, got {batch_size!r}")
        if not hasattr(model, "num_classes") or not hasattr(model, "input_shape"):
            raise ValueError(f"the model must be robustgen's network or a robustgen.as_classifier(module, input_shape) "
                             f"adapter, got {type(model).__name__}")
        if isinstance(score, Score):  # a score object: a function (Detector.from_function) or a user's own
            scorer = score
        else:
            score = check_score_name(score or self.default_score)
            if self.family and score not in self.family:
                raise ValueError(f"{type(self).__name__} takes the scores {', '.join(self.family)}, not {score!r}; "
                                 f"use make_detector(model, {score!r}) or Detector")
            if SCORES[score].needs_decoder and not isinstance(model, StyleMemoryNet):
                raise ValueError(f"score {score!r} needs robustgen's style-memory decoder, which {type(model).__name__} "
                                 f"has not; on any classifier use {', '.join(CLASSIFIER_SCORES)}, magnet or a function")
            if SCORES[score].needs_features and getattr(model, "feature_layer", "own") is None:
                raise ValueError(f"score {score!r} reads features: name a layer of the model (as_classifier(..., "
                                 "feature_layer=NAME); on the command line --feature-layer NAME)")
            scorer = None
        if model.label_free:
            raise ValueError("the model is a label-free autoencoder, not a classifier; give it as autoencoder=")
        if autoencoder is not None:
            check_autoencoder(autoencoder, model)
        self.model = model.eval()
        self.score_name = scorer.name if scorer is not None else score
        self.scorer: Score = (scorer or make_score(score, autoencoder)).to(self.device)
        self.batch_size = batch_size
        self.threshold: float | None = None
        self.fpr: float | None = None
        self.score_scale: float = 1.0  # the score's natural unit (``natural_unit``), set by fit()
        self.clean_scores_: np.ndarray | None = None  # scores of the data given to fit()
        self.fit_fpr_: float | None = None  # share of the fitting data the threshold flags (<= fpr)
        self._score_fitted = not self.scorer.needs_fit

    @classmethod
    def from_function(cls, model, fn, name: str, surrogate=None, batch_size: int = 500) -> "Detector":
        """A detector of any score: ``fn(x) -> (N,)`` on float images (N, C, H, W) in [0, 1], higher =
        more suspicious; ``surrogate`` (same signature, differentiable) gives attacks the gradient where
        ``fn`` has none (BPDA). ``model`` is the classifier it guards (any module through
        ``robustgen.as_classifier``). Fit, detect, attack it like any other."""
        from .function_score import FunctionScore

        return cls(model, FunctionScore(fn, name, surrogate), batch_size)

    @property
    def autoencoder(self) -> StyleMemoryNet | None:
        return getattr(self.scorer, "autoencoder", None)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # -- scoring -----------------------------------------------------------------------------------
    def score_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable scores (N,) of an already-validated tensor on the model's device."""
        return self._evaluate(x)[0]

    def _evaluate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(scores (N,), logits (N, C)) from one pass of the score's network evaluation."""
        if not self._score_fitted:
            raise RuntimeError(f"score {self.score_name!r} must be calibrated first: call fit(x_clean)")
        return self.scorer.evaluate(self.model, x)

    def score(self, x) -> np.ndarray:
        """One float per input, higher = more suspicious."""
        return self._scores(as_images(x, self.model, self.device))[0]

    def _scores(self, x: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
        """Batched, gradient-free scores (numpy) and logits of a validated tensor."""
        with torch.no_grad():
            parts = [self._evaluate(x[i:i + self.batch_size]) for i in range(0, x.shape[0], self.batch_size)]
        scores = torch.cat([s for s, _ in parts]).double().cpu().numpy()
        return scores, torch.cat([logits for _, logits in parts])

    # -- fitting and detection ----------------------------------------------------------------------
    def fit(self, x_clean, y_clean=None, fpr: float = 0.05) -> "Detector":
        """Calibrate the score (if it needs it) and set the threshold so that a share ``fpr`` of
        ``x_clean`` is flagged. Use held-out clean data (the validation split), never test data.
        ``y_clean`` is accepted for ART compatibility and not used: calibration is label-free."""
        x = as_images(x_clean, self.model, self.device)
        if self.scorer.needs_fit:
            with torch.no_grad():
                self.scorer.fit(self.model, x, self.batch_size)
            self._score_fitted = True
        clean = self._scores(x)[0]
        self.clean_scores_ = clean  # the fitting data's scores, for other operating points
        self.threshold = threshold_at_fpr(clean, fpr)
        self.fpr = fpr
        self.fit_fpr_ = float(np.mean(clean > self.threshold))
        if self.fit_fpr_ < 0.5 * fpr:
            tied = float(np.mean(clean == self.threshold))
            warnings.warn(f"score {self.score_name!r}: {tied:.1%} of the {len(clean)} clean fitting inputs share the "
                          f"threshold score {self.threshold:.4g}, so it flags {self.fit_fpr_:.1%} of them instead "
                          f"of {fpr:.1%}; this score is too discrete for that operating point (compare detectors "
                          "by AUROC, or pick another score)", ThresholdTieWarning, stacklevel=2)
        self.score_scale = natural_unit(clean, self.threshold)
        return self

    def detect(self, x) -> tuple[dict, np.ndarray]:
        """Return (report, is_adversarial bool array). The report holds ``scores``,
        ``threshold``, ``predictions`` and ``confidences`` (max softmax)."""
        if self.threshold is None:
            raise RuntimeError("the detector has no threshold yet: call fit(x_clean, fpr=...) first")
        x = as_images(x, self.model, self.device)
        scores, logits = self._scores(x)  # the classifier's logits come from the scoring pass
        conf, pred = logits.softmax(dim=1).max(dim=1)
        is_adv = scores > self.threshold
        report = {"scores": scores, "threshold": self.threshold, "score": self.score_name, "fpr": self.fpr,
                  "predictions": pred.cpu().numpy(), "confidences": conf.double().cpu().numpy()}
        return report, is_adv

    def detect_files(self, paths, out, **options):
        """Score image files (``.npy``/``.npz``, IDX, PNG/JPEG, folders) into the CSV ``out`` as a
        stream, a chunk at a time, with bounded memory; ``resume=True`` continues an interrupted CSV.
        Returns a :class:`~robustgen.detectors.streaming.DetectSummary`; see
        :func:`~robustgen.detectors.streaming.detect_files` for the options."""
        from .streaming import detect_files

        return detect_files(self, paths, out, **options)

    # -- persistence --------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Save model, score calibration and threshold in one file (atomic write, SHA-256 sealed). Of
        another classifier than robustgen's only its weights' digest is kept (give it to ``load``), and
        of a function score only its name (give the function to ``load``)."""
        from ..integrity import sha256_state

        own = isinstance(self.model, StyleMemoryNet)
        function = type(self.scorer).__name__ == "FunctionScore"
        payload = {"format": DETECTOR_FORMAT, "version": 1, "score": self.score_name, "function": function,
                   "score_state": self.scorer.state_dict(), "score_fitted": self._score_fitted,
                   "threshold": self.threshold, "fpr": self.fpr, "score_scale": self.score_scale, "batch_size": self.batch_size,
                   "fit_fpr": self.fit_fpr_, "model": ckpt_io.model_payload(self.model) if own else None,
                   "model_sha256": sha256_state(self.model)}
        if self.autoencoder is not None:
            payload["autoencoder"] = ckpt_io.model_payload(self.autoencoder)
        return ckpt_io.atomic_save(payload, path)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu", *, model=None, function=None,
             surrogate=None) -> "Detector":
        """Rebuild a saved detector, as the class named for its score (see :func:`make_detector`).
        ``model``: the classifier, for a detector of another classifier than robustgen's (its weights
        must be the saved ones); ``function`` (and ``surrogate``): for a function score."""
        from ..integrity import sha256_state

        payload = ckpt_io.safe_load(path)
        if not isinstance(payload, dict) or payload.get("format") != DETECTOR_FORMAT:
            raise ckpt_io.CheckpointError(f"{path} is not a robustgen detector file (save one with det.save)")
        if payload["model"] is not None:
            model = ckpt_io.model_from_checkpoint(payload["model"], device)
        elif model is None:
            raise ValueError(f"{path} guards a classifier that is not robustgen's; pass it: Detector.load(path, model=...)")
        elif sha256_state(model) != payload.get("model_sha256"):
            raise ValueError(f"{path} was fitted for other weights than the model given (SHA-256 differs)")
        ae = ckpt_io.model_from_checkpoint(payload["autoencoder"], device) if "autoencoder" in payload else None
        if payload.get("function"):
            if function is None:
                raise ValueError(f"{path} holds the function score {payload['score']!r}; pass it: "
                                 "Detector.load(path, function=fn)")
            det = cls.from_function(model.to(device), function, payload["score"], surrogate, payload["batch_size"])
        else:
            det = make_detector(model.to(device), payload["score"], batch_size=payload["batch_size"], autoencoder=ae)
        det.scorer.load_state_dict(payload["score_state"])
        det._score_fitted = payload["score_fitted"]
        det.threshold, det.fpr, det.score_scale = payload["threshold"], payload["fpr"], payload["score_scale"]
        det.fit_fpr_ = payload.get("fit_fpr")  # absent in files saved before robustgen recorded it
        return det


class ReconstructionDetector(Detector):
    """The paper's detector and robustgen's refinements of it: scores from the style-memory decoder's
    reconstruction under the predicted label (``recon``, ``recon-onehot``, ``margin``, ``posterior``,
    ``joint``, ``joint-sum``)."""

    family = ("recon", "recon-onehot", "margin", "posterior", "joint", "joint-sum")


class ConfidenceDetector(Detector):
    """The classifier alone: 1 - max softmax (the baseline every detector must beat)."""

    default_score = "confidence"
    family = ("confidence",)


class MahalanobisDetector(Detector):
    """Drop the decoder: Mahalanobis distance on the penultimate features (Lee et al. 2018)."""

    default_score = "mahalanobis"
    family = ("mahalanobis",)


class MagnetDetector(Detector):
    """Drop the label: a class-agnostic autoencoder's reconstruction error (``magnet``) or the
    classifier's divergence between x and its reconstruction (``magnet-jsd``), MagNet (Meng & Chen
    2017). ``MagnetDetector(model, autoencoder)``."""

    default_score = "magnet"
    family = ("magnet", "magnet-jsd")

    def __init__(self, model: StyleMemoryNet, autoencoder: StyleMemoryNet, score: str | None = None,
                 batch_size: int = 500):
        super().__init__(model, score, batch_size, autoencoder=autoencoder)


DETECTOR_CLASSES = (ReconstructionDetector, ConfidenceDetector, MahalanobisDetector, MagnetDetector)


def make_detector(model: StyleMemoryNet, score: str = "recon", batch_size: int = 500,
                  autoencoder: StyleMemoryNet | None = None) -> Detector:
    """A detector of the class named for ``score``; ``autoencoder`` for the magnet scores only."""
    check_score_name(score)
    cls = next((c for c in DETECTOR_CLASSES if score in c.family), Detector)
    if cls is MagnetDetector:
        return MagnetDetector(model, autoencoder, score, batch_size)
    return cls(model, score, batch_size, autoencoder=autoencoder)


__all__ = ["ConfidenceDetector", "Detector", "MagnetDetector", "MahalanobisDetector", "ReconstructionDetector",
           "SCORES", "ThresholdTieWarning", "as_images", "make_detector", "threshold_at_fpr"]
