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
from ..data.base import check_pixels
from ..data.inputs import layout
from ..model import StyleMemoryNet
from .baselines import check_autoencoder
from .registry import SCORES, check_score_name, make_score
from .scores import Score

DETECTOR_FORMAT = "robustgen-detector"


class ThresholdTieWarning(UserWarning):
    """The fitted threshold flags far fewer clean inputs than asked, because many share its score."""


def to_model_layout(x: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """(N, C, H, W) as is, (N, H, W, C) channels-last (as ART users pass numpy) permuted, (N, H, W)
    for a one-channel model given a channel axis; any other shape is a ValueError naming both."""
    kind = layout(x.shape, shape)
    return x if kind == "nchw" else x.permute(0, 3, 1, 2) if kind == "nhwc" else x.unsqueeze(1)


def as_images(x, model: StyleMemoryNet, device: torch.device | None = None) -> torch.Tensor:
    """Validate user input and return a float32 tensor (N, C, H, W) on ``device``.

    Raises ValueError naming the problem: type, dtype, shape, image size, NaN/inf, range.
    """
    if isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"images must be floating point in [0, 1], got numpy dtype {x.dtype}; "
                             "convert with x.astype('float32') / 255 for 8-bit images")
        x = torch.from_numpy(np.ascontiguousarray(x))
    elif not isinstance(x, torch.Tensor):
        raise ValueError(f"images must be a torch tensor or numpy array, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"images must be floating point in [0, 1], got dtype {x.dtype}; "
                         "convert with x.float() / 255 for 8-bit images")
    x = to_model_layout(x, model.input_shape)
    if x.shape[0] == 0:
        raise ValueError("no images given (N = 0)")
    check_pixels(x)
    return x.to(device=device or next(model.parameters()).device, dtype=torch.float32)


def threshold_at_fpr(clean_scores: np.ndarray, fpr: float) -> float:
    """The smallest threshold t such that at most ``fpr`` of the clean scores are > t
    (flagging is strict: score > t). With ties, the realised FPR may be below ``fpr``."""
    if not isinstance(fpr, (int, float)) or isinstance(fpr, bool) or not 0.0 <= fpr < 1.0:
        raise ValueError(f"fpr must be a number in [0, 1), got {fpr!r}")
    s = np.asarray(clean_scores, dtype=np.float64)
    if s.size == 0:
        raise ValueError("no clean scores to fit a threshold on")
    if not np.isfinite(s).all():
        bad = int((~np.isfinite(s)).sum())
        raise ValueError(f"{bad} of the {s.size} clean scores are NaN or infinite; a threshold fitted on them "
                         "would flag nothing (check the model and inputs)")
    s = np.sort(s)[::-1]  # descending
    k = int(np.floor(fpr * len(s) + 1e-9))  # how many clean inputs may lie above the threshold
    return float(s[min(k, len(s) - 1)])


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

    def __init__(self, model: StyleMemoryNet, score: str | None = None, batch_size: int = 500,
                 autoencoder: StyleMemoryNet | None = None):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a whole number of at least 1, got {batch_size!r}")
        score = check_score_name(score or self.default_score)
        if self.family and score not in self.family:
            raise ValueError(f"{type(self).__name__} takes the scores {', '.join(self.family)}, not {score!r}; "
                             f"use make_detector(model, {score!r}) or Detector")
        if model.label_free:
            raise ValueError("the model is a label-free autoencoder, not a classifier; give it as autoencoder=")
        if autoencoder is not None:
            check_autoencoder(autoencoder, model)
        self.model = model.eval()
        self.score_name = score
        self.scorer: Score = make_score(score, autoencoder).to(self.device)
        self.batch_size = batch_size
        self.threshold: float | None = None
        self.fpr: float | None = None
        self.score_scale: float = 1.0  # threshold minus clean median: the score's natural unit
        self.clean_scores_: np.ndarray | None = None  # scores of the data given to fit()
        self.fit_fpr_: float | None = None  # share of the fitting data the threshold flags (<= fpr)
        self._score_fitted = not self.scorer.needs_fit

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
        self.score_scale = max(self.threshold - float(np.median(clean)), 1e-6 * max(abs(self.threshold), 1.0))
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
        """Save model, score calibration and threshold in one file (atomic write)."""
        payload = {"format": DETECTOR_FORMAT, "version": 1, "score": self.score_name,
                   "score_state": self.scorer.state_dict(), "score_fitted": self._score_fitted,
                   "threshold": self.threshold, "fpr": self.fpr, "score_scale": self.score_scale, "batch_size": self.batch_size,
                   "fit_fpr": self.fit_fpr_, "model": ckpt_io.model_payload(self.model)}
        if self.autoencoder is not None:
            payload["autoencoder"] = ckpt_io.model_payload(self.autoencoder)
        return ckpt_io.atomic_save(payload, path)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> "Detector":
        """Rebuild a saved detector, as the class named for its score (see :func:`make_detector`)."""
        payload = ckpt_io.safe_load(path)
        if not isinstance(payload, dict) or payload.get("format") != DETECTOR_FORMAT:
            raise ckpt_io.CheckpointError(f"{path} is not a robustgen detector file (save one with det.save)")
        model = ckpt_io.model_from_checkpoint(payload["model"], device)
        ae = ckpt_io.model_from_checkpoint(payload["autoencoder"], device) if "autoencoder" in payload else None
        det = make_detector(model, payload["score"], batch_size=payload["batch_size"], autoencoder=ae)
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
