"""pytorch-ood's detectors as robustgen scores (``pip install 'robustgen[ood]'``): fitted on the same
clean validation images, thresholded, attacked and reported like every other score.

    ood-msp          pytorch_ood.detector.MaxSoftmax (Hendrycks & Gimpel 2017): - max softmax
    ood-energy       pytorch_ood.detector.EnergyBased (Liu et al. 2020)
    ood-mahalanobis  pytorch_ood.detector.Mahalanobis (Lee et al. 2018) on the classifier's features
                     (robustgen's FC 128, or the ``feature_layer`` of any other classifier)

The attacks that know the detector follow each one's own gradient where it has one (the logit
detectors are differentiable as pytorch-ood writes them). pytorch-ood's ``Mahalanobis.predict_features``
runs under ``torch.no_grad()`` on ``features.data``, so it has none: its score is pytorch-ood's own,
and the gradient the attacks follow is that of the same formula computed here differentiably from the
fitted centres and precision (a surrogate equal to the score, BPDA with the identity). Fitting is
label-free like robustgen's other scores: class membership is the model's prediction on the clean
fitting data.
"""

from __future__ import annotations

import torch

from .scores import Score


def _pytorch_ood():
    try:
        import pytorch_ood.detector as detector
    except ImportError:
        raise ValueError("the ood-* scores need pytorch-ood: pip install 'robustgen[ood]'") from None
    return detector


class _OODLogits(Score):
    """A pytorch-ood logits detector: its ``predict_logits`` on the classifier's logits."""

    kind = ""

    def __init__(self):
        self.detector = getattr(_pytorch_ood(), self.kind)(None)

    def evaluate(self, model, x):
        logits = model(x)
        return self.detector.predict_logits(logits), logits


class OODMaxSoftmax(_OODLogits):
    name, kind = "ood-msp", "MaxSoftmax"


class OODEnergy(_OODLogits):
    name, kind = "ood-energy", "EnergyBased"


class OODMahalanobis(Score):
    name = "ood-mahalanobis"
    needs_fit = True
    needs_features = True
    surrogate = "the same formula, differentiable"  # built in: pytorch-ood computes it without gradients

    def __init__(self):
        self.detector = _pytorch_ood().Mahalanobis(None)

    @torch.no_grad()
    def fit(self, model, x, batch_size=500):
        feats, preds = [], []
        for i in range(0, x.shape[0], batch_size):
            f, logits = model.features_and_logits(x[i:i + batch_size])
            feats.append(f)
            preds.append(logits.argmax(dim=1))
        z, y = torch.cat(feats), torch.cat(preds)
        missing = sorted(set(range(model.num_classes)) - set(y.unique().tolist()))
        if missing:
            raise ValueError(f"ood-mahalanobis needs every class predicted on the fitting data; none of classes {missing}")
        self.detector.fit_features(z, y)

    def _differentiable(self, f: torch.Tensor) -> torch.Tensor:
        """pytorch-ood's score, 0.5 min_k (f - mu_k)^T P (f - mu_k), with gradients."""
        mu, precision = self.detector.mu.to(f.device), self.detector.precision.to(f.device)
        diff = f[:, None, :] - mu[None]
        return 0.5 * torch.einsum("nkd,de,nke->nk", diff, precision, diff).min(dim=1).values

    def evaluate_real(self, model, x):
        """pytorch-ood's own score (no gradient) and the logits."""
        f, logits = model.features_and_logits(x)
        return self.detector.predict_features(f).to(f.dtype), logits

    def evaluate(self, model, x):
        f, logits = model.features_and_logits(x)
        real = self.detector.predict_features(f).to(f.dtype)
        if not torch.is_grad_enabled() or not f.requires_grad:
            return real, logits
        surrogate = self._differentiable(f)
        return surrogate + (real - surrogate).detach(), logits

    def state_dict(self):
        return {"mu": self.detector.mu, "cov": self.detector.cov, "precision": self.detector.precision}

    def load_state_dict(self, state):
        self.detector.mu, self.detector.cov, self.detector.precision = state["mu"], state["cov"], state["precision"]


OOD_SCORES = (OODMaxSoftmax, OODEnergy, OODMahalanobis)
