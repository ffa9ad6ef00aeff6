"""robustgen inside the Adversarial Robustness Toolbox (ART, ``pip install 'robustgen[art]'``).

    from robustgen.detectors.interop import ARTDetector, to_art_classifier
    classifier = to_art_classifier(model)              # an ART PyTorchClassifier: any ART attack runs on it
    x_adv = ProjectedGradientDescent(classifier, eps=0.3).generate(x)
    art_det = ARTDetector(ReconstructionDetector(model, "joint"))
    art_det.fit(x_val_clean)                           # calibrates the threshold (5 % FPR by default)
    report, is_adv = art_det.detect(x_adv)

This module imports ART; ``import robustgen`` does not, so ART stays optional.
"""

from __future__ import annotations

import numpy as np
import torch

try:
    from art.defences.detector.evasion import EvasionDetector
    from art.estimators.classification import PyTorchClassifier
except ImportError:  # pragma: no cover - exercised only without ART
    raise ImportError("robustgen.detectors.interop needs the Adversarial Robustness Toolbox: pip install 'robustgen[art]' "
                      "(or pip install adversarial-robustness-toolbox)") from None

from ..model import StyleMemoryNet
from .detector import Detector


def to_art_classifier(model: StyleMemoryNet) -> PyTorchClassifier:
    """Wrap a robustgen model as ART's ``PyTorchClassifier``: inputs (N, C, H, W) in [0, 1]
    (``clip_values=(0, 1)``), raw logits out, cross-entropy loss, on the model's device."""
    device = next(model.parameters()).device
    return PyTorchClassifier(model=model.eval(), loss=torch.nn.CrossEntropyLoss(), input_shape=model.input_shape,
                             nb_classes=model.num_classes, clip_values=(0.0, 1.0),
                             device_type="gpu" if device.type == "cuda" else "cpu")


class ARTDetector(EvasionDetector):
    """A :class:`Detector` (any of its named subclasses) behind ART's ``EvasionDetector`` interface.

    ``fit`` calibrates the threshold on clean data (no training: ``nb_epochs`` is accepted and
    unused, as are labels); ``detect`` returns ART's ``(report dict, is_adversarial bool array)``.
    """

    defence_params = ["fpr"]

    def __init__(self, detector: Detector, fpr: float = 0.05):
        super().__init__()
        self.detector, self.fpr = detector, fpr
        self._check_params()

    def _check_params(self) -> None:
        if not 0.0 < self.fpr < 1.0:
            raise ValueError(f"fpr must lie strictly between 0 and 1, got {self.fpr}")

    def fit(self, x: np.ndarray, y: np.ndarray | None = None, batch_size: int = 128, nb_epochs: int = 20,
            **kwargs) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a whole number of at least 1, got {batch_size!r}")
        self.detector.batch_size = batch_size
        self.detector.fit(x, fpr=kwargs.get("fpr", self.fpr))

    def detect(self, x: np.ndarray, batch_size: int = 128, **kwargs) -> tuple[dict, np.ndarray]:
        self.detector.batch_size = batch_size
        return self.detector.detect(x)
