"""The combined model: classifier and detector as one network with a "rejected" class.

Carlini & Wagner 2017 ("Adversarial examples are not easily detected", section 3.1) attack a
detector by folding it into the classifier as an extra class; ART's ``DetectorClassifier`` does the
same, but not differentiably. ``GuardedClassifier(model, detector)`` returns C + 1 logits:

    G_i(x) = Z_i(x) - max_j Z_j(x)                  for the C classes (the largest is exactly 0)
    G_C(x) = gain * (score(x) - tau) / scale         the reject logit

so the reject logit crosses zero exactly at the detector's threshold ``tau`` and wins the argmax
exactly when the detector flags x (score > tau; a tie goes to the class, as flagging is strict).
Any attack that takes a logits model (torchattacks, ART, AutoAttack) can attack it; an input is
robust when it is classified correctly *or* rejected.

Untargeted attacks need one more step: pushing x into the reject class lowers the true class's
probability too, so an attack on the C + 1 logits with the true label is rewarded for getting
caught. ``merged_logits(x, y)`` folds the reject logit into the true label's: a C-class view in
which "misclassified" means exactly "misclassified and not rejected",

    M_y = max(G_y, G_C)            where the detector flags x (G_C > 0): M_y > 0, the true label wins
    M_y = max(G_y, G_C - 1e-4)     where it does not: M_y < 0 exactly when some other class is top

(the 1e-4 only breaks the tie of a score exactly at the threshold, which is not flagged). It was
``logaddexp(G_y, G_C)``, which is smooth but not exact: up to log 2 above the larger of the two, it
called an input at class logits 0 (wrong) and -0.1 (true) with reject logit -0.1 robust, though it is
misclassified and not flagged, so attacks through the merged view stopped short of such inputs.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class _ModeOfTheWrapped:
    """A wrapper with no training mode of its own: ``training`` reads the wrapped model's.

    Attack libraries read ``model.training`` before an attack and call ``model.train()`` after it
    when that was True (torchattacks does). A wrapper built as a fresh ``nn.Module`` would read True
    while the model it wraps is in eval mode, and the library would leave the user's model in
    training mode (batch norm on batch statistics) for every later call. ``train()``/``eval()`` still
    reach the wrapped model, as a child module; that sets the flag read here."""

    def _wrapped(self) -> nn.Module:
        raise NotImplementedError

    @property
    def training(self) -> bool:
        return self._wrapped().training

    @training.setter
    def training(self, mode: bool) -> None:
        pass  # nn.Module sets its own flag in __init__ and train(); the wrapped model's is the one


class GuardedClassifier(_ModeOfTheWrapped, nn.Module):
    def __init__(self, model: nn.Module, detector, gain: float = 1.0):
        super().__init__()
        if detector.threshold is None:
            raise ValueError("GuardedClassifier needs a fitted detector (call detector.fit(x_clean) first)")
        if not (isinstance(gain, (int, float)) and math.isfinite(gain) and gain > 0):
            raise ValueError(f"gain must be a positive finite number, got {gain!r}")
        self.model, self.detector, self.gain = model, detector, gain

    def _wrapped(self) -> nn.Module:
        return self.model

    @property
    def num_classes(self) -> int:
        """Classes of the combined model: the model's C plus the reject class (index C)."""
        return self.model.num_classes + 1

    @property
    def reject_class(self) -> int:
        return self.model.num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores, logits = self.detector.scorer.evaluate(self.model, x)
        det = self.detector
        reject = self.gain * (scores - det.threshold) / det.score_scale
        shifted = logits - logits.max(dim=1, keepdim=True).values
        return torch.cat([shifted, reject[:, None].to(shifted.dtype)], dim=1)  # (N, C + 1)

    def merged_logits(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(N, C) logits in which the reject logit is merged into the true label's (see the module)."""
        return merge_reject(self(x), y)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Labels in 0..C, C meaning rejected."""
        return self(x).argmax(dim=1)

    def robust(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per input: classified correctly or rejected."""
        pred = self.predict(x)
        return (pred == y) | (pred == self.reject_class)


TIE = 1e-4  # how far below zero an unflagged reject logit is put, so that a score on the threshold is not a tie


def merge_reject(g: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(N, C + 1) guarded logits (class logits with max 0, reject logit last) -> (N, C) whose argmax is
    not ``y`` exactly when the input is misclassified and not flagged (reject logit <= 0)."""
    c = g.shape[1] - 1
    reject = g[:, c]
    reject = torch.where(reject > 0, reject, reject - TIE)
    merged = torch.maximum(g.gather(1, y[:, None])[:, 0], reject)
    return g[:, :c].scatter(1, y[:, None], merged[:, None])


class MergedView(_ModeOfTheWrapped, nn.Module):
    """``GuardedClassifier.merged_logits`` as a plain C-logit model for attack libraries, with the
    labels of the current batch set by the caller (``view.labels = y``, cleared after).

    torchattacks' APGD calls the model on the whole batch once, then only on the inputs that call
    found correct (``logits.max(1)[1] == y``). The view applies that same test to the logits it
    returned, so when a smaller batch comes it knows exactly which labels it holds: no bitwise
    agreement between calls is assumed (an input whose score sits on the threshold can flip
    between two calls on the same images). Any other batch size is an error."""

    def __init__(self, guarded: GuardedClassifier):
        super().__init__()
        self.guarded = guarded
        self._labels: torch.Tensor | None = None
        self._correct: torch.Tensor | None = None  # the last whole-batch call's test, per input
        self._sub: torch.Tensor | None = None  # the labels of the sub-batch, once one came

    def _wrapped(self) -> nn.Module:
        return self.guarded

    @property
    def labels(self) -> torch.Tensor | None:
        return self._labels

    @labels.setter
    def labels(self, y: torch.Tensor | None) -> None:
        self._labels, self._correct, self._sub = y, None, None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, y = x.shape[0], self._labels
        if y is not None and self._sub is None and n == y.shape[0]:
            out = self.guarded.merged_logits(x, y)
            self._correct = out.detach().max(1)[1] == y
            return out
        if self._sub is None and self._correct is not None and int(self._correct.sum()) == n:
            self._sub = y[self._correct]
        if self._sub is None or self._sub.shape[0] != n:
            raise RuntimeError("MergedView was called on a batch that is neither the labelled one nor its "
                               "correctly classified part")
        return self.guarded.merged_logits(x, self._sub)
