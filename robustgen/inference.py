"""Per-sample outputs of a model over a whole dataset, computed once in batches on the model's device
and returned on the CPU: predictions, style memories and reconstruction errors."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .model import StyleMemoryNet, recon_error


@dataclass
class Encoded:
    """Everything the experiments need about a dataset, computed once: (N, ...) tensors on the CPU."""

    x: torch.Tensor  # (N, C, H, W)
    y: torch.Tensor  # (N,)
    probs: torch.Tensor  # (N, C) softmax
    style: torch.Tensor  # (N, D)
    err_pred: torch.Tensor  # (N,) L2 error under the predicted softmax (what the network trains on)
    err_pred_onehot: torch.Tensor  # (N,) L2 error under the one-hot predicted label
    err_true: torch.Tensor  # (N,) L2 error under the one-hot true label

    @property
    def pred(self) -> torch.Tensor:
        return self.probs.argmax(dim=1)

    @property
    def correct(self) -> torch.Tensor:
        return self.pred == self.y


@torch.no_grad()
def encode_dataset(model: StyleMemoryNet, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> Encoded:
    device = next(model.parameters()).device
    parts = {k: [] for k in ("probs", "style", "err_pred", "err_pred_onehot", "err_true")}
    for i in range(0, x.shape[0], batch_size):
        xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        logits, style = model.encode(xb)
        probs = logits.softmax(dim=1)
        parts["probs"].append(probs.cpu())
        parts["style"].append(style.cpu())
        err = recon_error(xb, model.decode(model.class_vector(logits, "softmax"), style)).cpu()
        parts["err_pred"].append(err)
        if model.label_free:  # an autoencoder has no label to decode under: one error
            parts["err_pred_onehot"].append(err)
            parts["err_true"].append(err)
            continue
        onehot_pred = F.one_hot(probs.argmax(dim=1), model.num_classes).float()
        parts["err_pred_onehot"].append(recon_error(xb, model.decode(onehot_pred, style)).cpu())
        parts["err_true"].append(recon_error(xb, model.decode(F.one_hot(yb, model.num_classes).float(), style)).cpu())
    return Encoded(x.cpu(), y.cpu(), **{k: torch.cat(v) for k, v in parts.items()})


def evaluate(model: StyleMemoryNet, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> dict:
    """Accuracy and mean L2 reconstruction error under the predicted softmax (what the network is
    trained with), the predicted one-hot label, and the true label (label-corrected)."""
    was_training = model.training
    model.eval()
    enc = encode_dataset(model, x, y, batch_size)
    model.train(was_training)
    return {"n": int(x.shape[0]), "accuracy": float(enc.correct.double().mean()),
            "recon_pred_softmax": float(enc.err_pred.mean()), "recon_pred_onehot": float(enc.err_pred_onehot.mean()),
            "recon_true": float(enc.err_true.mean())}
