"""The two standard detectors the label-conditioned reconstruction stands between, as scores of the
same detector API (higher = more suspicious, differentiable in x for the detector-aware attacks):

    mahalanobis   drop the decoder: Mahalanobis distance of the penultimate features to the nearest
                  class mean, tied covariance (Lee et al. 2018)
    magnet        drop the label: L2 reconstruction error of a class-agnostic autoencoder of matched
                  size (MagNet's detector, Meng & Chen 2017)
    magnet-jsd    MagNet's second detector: Jensen-Shannon divergence between the classifier's
                  softened outputs on x and on the autoencoder's reconstruction of x

Both are written here rather than imported: pytorch-ood's Mahalanobis detector fits from a
DataLoader and perturbs its inputs before scoring (this one fits on the tensors the detector API is
given and stays a plain differentiable function of x, so the detector-aware attacks follow its
gradient), and no maintained PyTorch package has MagNet (ART and torchattacks ship neither).

The autoencoder is a label-free :class:`StyleMemoryNet` (``model.label_free = true``: the same
encoder and decoder widths, a logistic code as wide as class vector + style), trained by
``robustgen train --config mnist-ae`` (or ``fashion-ae``) on the same training split as the
classifiers. It is trained once per dataset, not per classifier: MagNet's detector does not depend
on the classifier it guards, and one autoencoder serves every model of that dataset.
"""

from __future__ import annotations

import math

import torch

from ..model import StyleMemoryNet, recon_error
from .scores import Score


class Mahalanobis(Score):
    """Lee et al. 2018, "A simple unified framework for detecting out-of-distribution samples and
    adversarial attacks": class-conditional Gaussians with one tied covariance on the penultimate
    features (``model.features_and_logits``: FC 128 of robustgen's network, the named
    ``feature_layer`` of any other classifier); the score is the squared Mahalanobis distance to the
    nearest class mean. It drops the decoder, so it is one of the two ablations the
    label-conditioned reconstruction stands between.

    Written here rather than taken from pytorch-ood, whose detector fits from a DataLoader and
    perturbs its inputs first: this one fits on the clean tensors the detector API is given, and
    stays a plain differentiable function of x for the detector-aware attacks. Fitting is
    label-free like the other scores' (ART's API): class membership is the model's prediction on
    the clean fitting data (Lee et al. use the true labels; on clean validation data they differ
    for under 1 % of MNIST images). A 1e-6 ridge keeps the covariance invertible."""

    name = "mahalanobis"
    needs_fit = True
    needs_features = True

    def __init__(self):
        self.means: torch.Tensor | None = None  # (C, D); NaN rows for classes never predicted
        self.precision: torch.Tensor | None = None  # (D, D)

    def fit(self, model, x, batch_size=500):
        feats, preds = [], []
        for i in range(0, x.shape[0], batch_size):
            f, logits = model.features_and_logits(x[i:i + batch_size])
            feats.append(f.double())
            preds.append(logits.argmax(dim=1))
        f, p = torch.cat(feats), torch.cat(preds)
        c, d = model.num_classes, f.shape[1]
        means = torch.full((c, d), float("nan"), dtype=torch.float64, device=f.device)
        centred = torch.empty_like(f)
        for k in range(c):
            mask = p == k
            if mask.any():
                means[k] = f[mask].mean(dim=0)
                centred[mask] = f[mask] - means[k]
        cov = centred.T @ centred / max(1, f.shape[0])
        cov += 1e-6 * (torch.trace(cov) / d + 1e-12) * torch.eye(d, dtype=cov.dtype, device=cov.device)
        self.means, self.precision = means.float(), torch.linalg.inv(cov).float()

    def evaluate(self, model, x):
        f, logits = model.features_and_logits(x)
        means, prec = self.means.to(f.device), self.precision.to(f.device)
        seen = ~torch.isnan(means[:, 0])
        diff = f[:, None, :] - means[seen][None]  # (N, C', D)
        dist = torch.einsum("ncd,de,nce->nc", diff, prec, diff)  # squared Mahalanobis distance per class
        return dist.min(dim=1).values, logits

    def state_dict(self):
        return {"means": self.means, "precision": self.precision}

    def load_state_dict(self, state):
        self.means, self.precision = state["means"], state["precision"]


def check_autoencoder(autoencoder, model: StyleMemoryNet) -> StyleMemoryNet:
    """The autoencoder of a magnet score: a label-free network for the classifier's image shape."""
    if not isinstance(autoencoder, StyleMemoryNet) or not autoencoder.label_free:
        what = type(autoencoder).__name__ if not isinstance(autoencoder, StyleMemoryNet) else "a classifier"
        raise ValueError(f"the magnet scores need a label-free autoencoder (robustgen train --config mnist-ae), got {what}")
    if autoencoder.input_shape != model.input_shape:
        raise ValueError(f"the autoencoder takes images of shape {autoencoder.input_shape} but the model "
                         f"{model.input_shape}; train the autoencoder on the model's dataset")
    return autoencoder


class Magnet(Score):
    """MagNet's reconstruction-error detector (Meng & Chen 2017, section 3.1): ``||x - ae(x)||_2``
    for a denoising autoencoder ``ae`` trained on clean training images, with no label. The L2 norm
    (MagNet used L2 and L1 on MNIST) keeps it in the units of ``recon``, the label-conditioned
    version it ablates."""

    name = "magnet"
    needs_autoencoder = True

    def __init__(self, autoencoder: StyleMemoryNet | None = None):
        self.autoencoder = autoencoder.eval() if autoencoder is not None else None

    def reconstruction(self, x: torch.Tensor) -> torch.Tensor:
        if self.autoencoder is None:
            raise RuntimeError(f"score {self.name!r} has no autoencoder")
        return self.autoencoder.reconstruct(x)

    def evaluate(self, model, x):
        return recon_error(x, self.reconstruction(x)), model(x)

    def to(self, device):
        if self.autoencoder is not None:
            self.autoencoder.to(device)
        return self


class MagnetJSD(Magnet):
    """MagNet's probability-divergence detector (section 3.1.2): JSD(softmax(f(x) / T) ||
    softmax(f(ae(x)) / T)) for the classifier f, at MagNet's temperature T = 10 (it used 10 and 40
    on CIFAR-10). Catches inputs the autoencoder moves across the decision boundary even when the
    pixel error stays small."""

    name = "magnet-jsd"
    temperature = 10.0

    def evaluate(self, model, x):
        logits = model(x)
        lp = (logits / self.temperature).log_softmax(dim=1)
        lq = (model(self.reconstruction(x)) / self.temperature).log_softmax(dim=1)
        lm = torch.logaddexp(lp, lq) - math.log(2.0)  # log of the mixture (p + q) / 2
        jsd = 0.5 * (lp.exp() * (lp - lm)).sum(dim=1) + 0.5 * (lq.exp() * (lq - lm)).sum(dim=1)
        return jsd, logits
