"""Any classifier: the one adapter that turns a user's ``torch.nn.Module`` into what robustgen's
detectors, attacks and reports expect of a model.

    model = robustgen.as_classifier(my_cnn, input_shape=(1, 28, 28), feature_layer="fc1")
    det = robustgen.make_detector(model, "energy").fit(x_val)

The module takes float images (N, C, H, W) in [0, 1] and returns logits (N, K), normalising inside
itself; K is read from its output on two probe images, (C, H, W) from the data. Nothing above this
file asks whether a model is robustgen's own network, except the decoder scores (``recon``,
``joint-sum``, ...), which need the style-memory decoder and say so by name.

Features for ``mahalanobis`` come from the layer named ``feature_layer`` (a forward hook, its output
flattened); a TorchScript module has no Python hooks, so it can be given none.
"""

from __future__ import annotations

import torch
from torch import nn


class ClassifierError(ValueError):
    """A module that cannot serve as a classifier here: what it returned, or what was asked of it."""


def _probe(module: nn.Module, input_shape: tuple[int, int, int], device) -> int:
    """Run the module on two probe images; return its class count K, or say what is wrong."""
    x = torch.rand(2, *input_shape, generator=torch.Generator().manual_seed(0)).to(device)
    try:
        with torch.no_grad():
            out = module(x)
    except Exception as e:  # noqa: BLE001 - any failure of a user's module is reported in one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ClassifierError(f"the model fails on images of shape (N, {', '.join(map(str, input_shape))}): "
                              f"{type(e).__name__}: {first}") from None
    if not isinstance(out, torch.Tensor):
        raise ClassifierError(f"the model must return a logits tensor (N, classes), it returned {type(out).__name__}")
    if out.dim() != 2 or out.shape[0] != 2 or out.shape[1] < 2:
        raise ClassifierError(f"the model must return logits of shape (N, classes) with at least 2 classes; on 2 "
                              f"images it returned shape {tuple(out.shape)}")
    if not torch.isfinite(out).all():
        raise ClassifierError("the model returned NaN or infinite logits on two random images in [0, 1]")
    if bool(((out >= 0) & (out <= 1)).all()) and torch.allclose(out.double().sum(1), torch.ones(2, dtype=torch.float64),
                                                                 atol=1e-4):
        # AutoAttack's check too: the cross-entropy of probabilities has vanishing gradients, so gradient attacks
        # stall and the report would overstate robustness (log-probabilities are logits and pass)
        raise ClassifierError("the model returns probabilities (each row in [0, 1], summing to 1), not logits: "
                              "attacks would stall on them; return the logits (drop the final softmax) or their log")
    return int(out.shape[1])


class Classifier(nn.Module):
    """A user's module as a robustgen model: ``forward`` (its logits), ``num_classes``,
    ``input_shape``, ``features_and_logits`` (through ``feature_layer``) and ``meta``."""

    label_free = False

    def __init__(self, module: nn.Module, input_shape, *, feature_layer: str | None = None, name: str = "model",
                 num_classes: int | None = None):
        super().__init__()
        if not isinstance(module, nn.Module):
            raise ClassifierError(f"the model must be a torch.nn.Module, got {type(module).__name__}")
        shape = tuple(int(v) for v in input_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ClassifierError(f"input_shape must be (C, H, W), got {tuple(input_shape)}")
        self.module = module.eval()
        self._input_shape = shape
        device = next((p.device for p in module.parameters()), torch.device("cpu"))
        self._num_classes = _probe(self.module, shape, device)
        if num_classes is not None and num_classes != self._num_classes:
            raise ClassifierError(f"the model returns {self._num_classes} logits, but the data has {num_classes} "
                                  "classes")
        self.feature_layer = None
        if feature_layer is not None:
            self.set_feature_layer(feature_layer)
        self.meta = {"path": name, "name": name, "foreign": True, "dataset": None, "config": None, "epoch": None}

    @property
    def num_classes(self) -> int:
        return self._num_classes

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self._input_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)

    def set_feature_layer(self, name: str) -> None:
        if isinstance(self.module, torch.jit.ScriptModule):
            raise ClassifierError(f"--feature-layer {name}: a TorchScript model takes no forward hooks; give the "
                                  "model as a package.module:function factory to use a feature layer")
        layers = dict(self.module.named_modules())
        if name not in layers or not name:
            some = ", ".join(n for n in list(layers)[1:9] if n)
            raise ClassifierError(f"the model has no layer named {name!r} (its layers include {some})")
        self.feature_layer = name

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features (N, D): the output of ``feature_layer``, flattened; logits (N, K)) from one pass."""
        if self.feature_layer is None:
            raise ClassifierError("this score needs features: name a layer of the model (feature_layer=, on the "
                                  "command line --feature-layer)")
        caught = []
        hook = dict(self.module.named_modules())[self.feature_layer].register_forward_hook(
            lambda _m, _i, out: caught.append(out))
        try:
            logits = self.module(x)
        finally:
            hook.remove()
        if len(caught) != 1 or not isinstance(caught[0], torch.Tensor):
            raise ClassifierError(f"layer {self.feature_layer!r} ran {len(caught)} times or returned no tensor in one "
                                  "forward pass; name a layer that runs once")
        return caught[0].flatten(1), logits


def as_classifier(module: nn.Module, input_shape, *, feature_layer: str | None = None, name: str | None = None,
                  num_classes: int | None = None):
    """robustgen's own network as it is, any other module through :class:`Classifier`."""
    from .model import StyleMemoryNet

    if isinstance(module, (StyleMemoryNet, Classifier)):
        if feature_layer is not None and isinstance(module, Classifier):
            module.set_feature_layer(feature_layer)
        return module
    return Classifier(module, input_shape, feature_layer=feature_layer, num_classes=num_classes,
                      name=name or type(module).__name__)


def check_logits(logits: torch.Tensor, n: int, k: int) -> None:
    """Refuse logits of the wrong shape or with NaN, where a model is used on real data."""
    if logits.shape != (n, k):
        raise ClassifierError(f"the model returned logits of shape {tuple(logits.shape)} for {n} images; expected ({n}, {k})")
    if not torch.isfinite(logits).all():
        bad = int((~torch.isfinite(logits)).any(dim=1).sum())
        raise ClassifierError(f"the model returned NaN or infinite logits for {bad} of {n} images")


__all__ = ["Classifier", "ClassifierError", "as_classifier", "check_logits"]
