"""How much the style memory holds the class, and how much the decoder uses the label.

The paper's idea (Wiyatno & Orchard 2018, section 3) is that the class vector carries *what* an
input is and the style memory *how* it was drawn. Three measures test that on a trained model:

- ``probe_accuracy``: a linear probe (scikit-learn logistic regression) predicting the class from
  the style alone, fitted on one set of styles and scored on another. Chance is 1 / C; a style
  memory free of class information stays near it.
- ``label_sensitivity``: the mean L2 distance between a style decoded under its predicted label and
  under each other label, relative to the mean clean reconstruction error. About 0 when the
  decoder ignores the label.
- ``drawn_as_label``: the share of (style, label c) pairs whose decoding the network itself
  classifies as c (the style-transfer figure as a number).
"""

from __future__ import annotations

import numpy as np
import torch

from ..inference import encode_dataset
from ..model import StyleMemoryNet


def probe_accuracy(style_fit: np.ndarray, y_fit: np.ndarray, style_eval: np.ndarray, y_eval: np.ndarray) -> float:
    """Accuracy on (style_eval, y_eval) of a logistic regression fitted on (style_fit, y_fit)."""
    from sklearn.linear_model import LogisticRegression

    probe = LogisticRegression(max_iter=2000)
    probe.fit(np.asarray(style_fit, dtype=np.float64), np.asarray(y_fit))
    return float(probe.score(np.asarray(style_eval, dtype=np.float64), np.asarray(y_eval)))


@torch.no_grad()
def decode_sensitivity(model: StyleMemoryNet, style: torch.Tensor, pred: torch.Tensor, err_clean: float,
                       batch_size: int = 200) -> tuple[float, float]:
    """(label_sensitivity, drawn_as_label) for styles (N, D) with predicted labels (N,)."""
    device = next(model.parameters()).device
    dist, drawn, count = 0.0, 0, 0
    c = model.num_classes
    for i in range(0, len(style), batch_size):
        s, p = style[i:i + batch_size].to(device), pred[i:i + batch_size].to(device)
        images = model.decode_all_labels(s)  # (B, C, 1, S, S)
        own = images[torch.arange(len(s), device=device), p]  # (B, 1, S, S)
        d = (images - own[:, None]).flatten(2).norm(dim=2)  # (B, C); zero at the predicted label
        dist += float(d.sum()) / (c - 1)
        labels = model(images.flatten(0, 1)).argmax(dim=1).view(len(s), c)
        drawn += int((labels == torch.arange(c, device=device)).sum())
        count += len(s)
    return dist / count / err_clean, drawn / (count * c)


def style_measures(model: StyleMemoryNet, x_fit: torch.Tensor, y_fit: torch.Tensor, x: torch.Tensor,
                   y: torch.Tensor, n_decode: int = 1000) -> dict:
    """All three measures: the probe fitted on (x_fit, y_fit) styles (the validation split) and
    scored on (x, y) (the test split); sensitivity and drawn-as-label on the first ``n_decode``."""
    fit_enc, enc = encode_dataset(model, x_fit, y_fit), encode_dataset(model, x, y)
    m = min(n_decode, len(y))
    err_clean = float(enc.err_pred_onehot[:m].mean())
    sensitivity, drawn = decode_sensitivity(model, enc.style[:m], enc.pred[:m], err_clean)
    return {
        "probe_accuracy": probe_accuracy(fit_enc.style.numpy(), fit_enc.y.numpy(), enc.style.numpy(), enc.y.numpy()),
        "probe_chance": 1.0 / model.num_classes,
        "label_sensitivity": sensitivity,
        "drawn_as_label": drawn,
        "n_probe_fit": int(len(y_fit)), "n_probe_eval": int(len(y)), "n_decoded": m,
    }
