"""The style-memory network (Wiyatno & Orchard, 2018, section 4) for images of any (C, H, W).

Encoder ``paper`` (the default): conv 32 filters 5x5 stride 2 -> conv 64 filters 5x5 stride 2 ->
FC 256 -> FC 128, all ReLU, then a top layer of ``num_classes`` softmax units plus ``style_dim``
logistic "style memory" units. Encoder ``conv4``, for harder data: two convolutions at each of the
two resolutions (the second one strided), in the spirit of TRADES' SmallCNN. The decoder mirrors
the encoder and rebuilds the image, every channel in [0, 1], from (class vector, style).
With ``label_free`` the same network is a plain autoencoder of matched size (MagNet's detector, Meng
& Chen 2017): the top layer's ``num_classes + style_dim`` units are one logistic code, no label.

Contracts (DESIGN.md): inputs are float tensors in [0, 1] of shape (N, C, H, W); ``model(x)``
returns raw logits (N, classes) so that torchattacks/ART can use it as a plain classifier; softmax
is applied only where the decoder needs it. The per-channel pixel mean and std of the training
data live in the spec and in buffers, so the normalisation travels with the weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

ENCODERS = ("paper", "conv4")


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a :class:`StyleMemoryNet` (stored inside checkpoints)."""

    num_classes: int
    style_dim: int = 16
    channels: tuple[int, int] = (32, 64)
    kernel_size: int = 5
    hidden: tuple[int, int] = (256, 128)
    in_channels: int = 1
    height: int = 28
    width: int = 28
    mean: tuple[float, ...] = (0.5,)  # per-channel pixel mean of the training split
    std: tuple[float, ...] = (0.5,)  # per-channel pixel std of the training split
    encoder: str = "paper"  # paper | conv4
    critic_hidden: int = -1  # training-only class critic on the style: -1 none, 0 linear, >0 MLP width
    separate_style: bool = False  # style units on their own encoder branch instead of the shared top layer
    label_free: bool = False  # a class-agnostic autoencoder (MagNet's detector): all top units are one logistic code


    def __post_init__(self):
        if self.encoder not in ENCODERS:
            raise ValueError(f"model encoder must be one of {', '.join(ENCODERS)}, got {self.encoder!r}")
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            raise ValueError(f"mean and std need one value per input channel ({self.in_channels}), got "
                             f"{len(self.mean)} and {len(self.std)}")
        if self.label_free and (self.separate_style or self.critic_hidden >= 0):
            raise ValueError("a label-free autoencoder has one code: no separate style branch and no class critic")
        if self.height < 4 or self.width < 4:
            raise ValueError(f"images must be at least 4x4 pixels (two stride-2 stages), got {self.height}x{self.width}")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.in_channels, self.height, self.width)

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("channels", "hidden", "mean", "std"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        """Rebuild a spec; older checkpoints (one ``image_size``, MNIST's normalisation) still load."""
        d = dict(d)
        size = d.pop("image_size", None)
        if size is not None:
            d.setdefault("height", size)
            d.setdefault("width", size)
        for k, default in (("channels", (32, 64)), ("hidden", (256, 128))):
            d[k] = tuple(d.get(k, default))
        for k in ("mean", "std"):
            if k in d:
                d[k] = tuple(float(v) for v in d[k])
        if "mean" not in d:  # written before the spec held it: MNIST's values (the weights' buffers override)
            d["mean"], d["std"] = (0.1307,) * d.get("in_channels", 1), (0.3081,) * d.get("in_channels", 1)
        return cls(**d)


def _sizes(n: int) -> tuple[int, int, int]:
    """Sizes along one axis after 0, 1 and 2 stride-2 stages (padding k // 2): 28 -> 14 -> 7."""
    return n, (n + 1) // 2, ((n + 1) // 2 + 1) // 2


def _conv_stack(spec: ModelSpec) -> list[nn.Conv2d]:
    c1, c2 = spec.channels
    k, p, cin = spec.kernel_size, spec.kernel_size // 2, spec.in_channels
    if spec.encoder == "paper":
        return [nn.Conv2d(cin, c1, k, 2, p), nn.Conv2d(c1, c2, k, 2, p)]
    return [nn.Conv2d(cin, c1, k, 1, p), nn.Conv2d(c1, c1, k, 2, p), nn.Conv2d(c1, c2, k, 1, p), nn.Conv2d(c2, c2, k, 2, p)]


class StyleMemoryNet(nn.Module):
    """Classifier with a style memory and a decoder.

    Shapes: x (N, C, H, W) in [0, 1] -> logits (N, classes), style (N, D) in (0, 1);
    decode(class_vector (N, classes), style (N, D)) -> x_hat (N, C, H, W) in (0, 1).

    Example::

        net = StyleMemoryNet(ModelSpec(num_classes=10))
        logits, style = net.encode(x)
        x_hat = net.reconstruct(x, mode="softmax")
    """

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        self.meta: dict = {}  # filled by the checkpoint loader: dataset, config, epoch, path
        c1, c2 = spec.channels
        h1, h2 = spec.hidden
        k, pad = spec.kernel_size, spec.kernel_size // 2
        self._hs, self._ws = _sizes(spec.height), _sizes(spec.width)
        flat = c2 * self._hs[2] * self._ws[2]
        top = spec.num_classes + spec.style_dim

        shape = (spec.in_channels, 1, 1)
        self.register_buffer("pixel_mean", torch.tensor(spec.mean, dtype=torch.float32).view(shape))
        self.register_buffer("pixel_std", torch.tensor(spec.std, dtype=torch.float32).view(shape))

        branches = ("enc", "sty") if spec.separate_style else ("enc",)
        for branch in branches:  # the style branch, when separate, has the encoder's shape
            for i, conv in enumerate(_conv_stack(spec)):
                setattr(self, f"{branch}_conv{i + 1}", conv)
            setattr(self, f"{branch}_fc1", nn.Linear(flat, h1))
            setattr(self, f"{branch}_fc2", nn.Linear(h1, h2))
        self._n_convs = len(_conv_stack(spec))
        self.enc_top = nn.Linear(h2, spec.num_classes if spec.separate_style else top)
        if spec.separate_style:
            self.sty_top = nn.Linear(h2, spec.style_dim)
            # Batch-normalised style logits: without it Adam drives this branch, which only the
            # decoder's small gradient trains, into a saturated constant style within ~20 steps.
            self.sty_norm = nn.BatchNorm1d(spec.style_dim)
        if spec.label_free:
            # The same for an autoencoder's code: with no cross-entropy to keep the encoder's units
            # alive, a plain top layer collapses to one constant code (the mean image) within an epoch.
            self.code_norm = nn.BatchNorm1d(top)

        self.dec_fc1 = nn.Linear(top, h2)
        self.dec_fc2 = nn.Linear(h2, h1)
        self.dec_fc3 = nn.Linear(h1, flat)
        # output_padding (0 or 1 per axis) undoes the rounding of each stride-2 conv: 7 -> 14 -> 28.
        op = [(self._hs[i] - (2 * self._hs[i + 1] - 1), self._ws[i] - (2 * self._ws[i + 1] - 1)) for i in (1, 0)]
        cout = spec.in_channels
        if spec.encoder == "paper":
            self.dec_deconv1 = nn.ConvTranspose2d(c2, c1, k, stride=2, padding=pad, output_padding=op[0])
            self.dec_deconv2 = nn.ConvTranspose2d(c1, cout, k, stride=2, padding=pad, output_padding=op[1])
        else:
            self.dec_deconv1 = nn.ConvTranspose2d(c2, c2, k, stride=2, padding=pad, output_padding=op[0])
            self.dec_conv1 = nn.Conv2d(c2, c1, k, padding=pad)
            self.dec_deconv2 = nn.ConvTranspose2d(c1, c1, k, stride=2, padding=pad, output_padding=op[1])
            self.dec_conv2 = nn.Conv2d(c1, cout, k, padding=pad)

        # Training-only adversary ([style] critic > 0): predicts the class from the style through a
        # gradient-reversal layer (robustgen.style_losses); never used for inference.
        if spec.critic_hidden == 0:
            self.style_critic = nn.Linear(spec.style_dim, spec.num_classes)
        elif spec.critic_hidden > 0:
            self.style_critic = nn.Sequential(nn.Linear(spec.style_dim, spec.critic_hidden), nn.ReLU(),
                                              nn.Linear(spec.critic_hidden, spec.num_classes))

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    @property
    def style_dim(self) -> int:
        return self.spec.style_dim

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.spec.input_shape

    @property
    def label_free(self) -> bool:
        """True for a class-agnostic autoencoder: ``model(x)`` is then its code, not class logits."""
        return self.spec.label_free

    # -- encoder -------------------------------------------------------------------------------
    def features(self, x: torch.Tensor, branch: str = "enc") -> torch.Tensor:
        """Penultimate (FC 128) activations, shape (N, hidden[1]), of the shared encoder (``enc``) or
        of the separate style branch (``sty``)."""
        h = (x - self.pixel_mean) / self.pixel_std
        for i in range(self._n_convs):
            h = F.relu(getattr(self, f"{branch}_conv{i + 1}")(h))
        h = h.flatten(1)  # (N, c2 * H/4 * W/4)
        h = F.relu(getattr(self, f"{branch}_fc1")(h))
        return F.relu(getattr(self, f"{branch}_fc2")(h))

    def logits_from_features(self, features: torch.Tensor) -> torch.Tensor:
        """Class logits (N, classes) from the shared encoder's penultimate ``features`` (N, hidden[1])."""
        return self.enc_top(features)[:, :self.num_classes]

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(penultimate features, class logits) from one pass: what the ``mahalanobis`` score reads of
        any classifier (robustgen.classifier.Classifier gives the same from a named layer)."""
        f = self.features(x)
        return f, self.logits_from_features(f)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (logits (N, classes), style (N, D) in (0, 1))."""
        if self.spec.separate_style:
            return self.enc_top(self.features(x)), torch.sigmoid(self.sty_norm(self.sty_top(self.features(x, "sty"))))
        top = self.enc_top(self.features(x))
        if self.label_free:
            top = self.code_norm(top)
        logits, style_pre = top.split([self.num_classes, self.style_dim], dim=1)
        return logits, torch.sigmoid(style_pre)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw logits (N, classes): the plain-classifier view used by attacks."""
        if self.spec.separate_style:  # the style branch plays no part in the classification
            return self.enc_top(self.features(x))
        return self.encode(x)[0]

    # -- decoder -------------------------------------------------------------------------------
    def decode(self, class_vector: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """Rebuild images (N, C, H, W) from a class vector (N, classes) (softmax or one-hot) and a style (N, D)."""
        h = torch.cat([class_vector, style], dim=1)
        h = F.relu(self.dec_fc1(h))
        h = F.relu(self.dec_fc2(h))
        h = F.relu(self.dec_fc3(h))
        h = h.view(-1, self.spec.channels[1], self._hs[2], self._ws[2])  # (N, c2, H/4, W/4)
        h = F.relu(self.dec_deconv1(h))
        if self.spec.encoder == "paper":
            return torch.sigmoid(self.dec_deconv2(h))
        h = F.relu(self.dec_conv1(h))
        h = F.relu(self.dec_deconv2(h))
        return torch.sigmoid(self.dec_conv2(h))

    def reconstruct(self, x: torch.Tensor, mode: str | torch.Tensor = "softmax") -> torch.Tensor:
        """Reconstruct ``x`` from its own style memory and a class vector chosen by ``mode``.

        ``mode="softmax"``: the predicted softmax (what the network was trained with);
        ``mode="onehot"``: the one-hot predicted label;
        a tensor of labels (N,): the one-hot of those labels (the paper's "label-corrected"
        reconstruction when they are the true labels).
        """
        logits, style = self.encode(x)
        return self.decode(self.class_vector(logits, mode), style)

    def class_vector(self, logits: torch.Tensor, mode: str | torch.Tensor) -> torch.Tensor:
        """The decoder's class input for ``logits`` under ``mode`` (see :meth:`reconstruct`); for a
        label-free autoencoder, its logistic code whatever the mode."""
        if self.label_free:
            if isinstance(mode, torch.Tensor):
                raise ValueError("a label-free autoencoder cannot decode under given labels")
            return torch.sigmoid(logits)
        if isinstance(mode, torch.Tensor):
            labels = mode.to(device=logits.device, dtype=torch.long)
            if labels.shape != logits.shape[:1]:
                raise ValueError(f"labels must have shape ({logits.shape[0]},), got {tuple(labels.shape)}")
            if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
                raise ValueError(f"labels must lie in 0..{self.num_classes - 1}")
            return F.one_hot(labels, self.num_classes).to(logits.dtype)
        if mode == "softmax":
            return logits.softmax(dim=1)
        if mode == "onehot":
            return F.one_hot(logits.argmax(dim=1), self.num_classes).to(logits.dtype)
        raise ValueError(f"unknown reconstruction mode {mode!r}; use 'softmax', 'onehot' or a label tensor")

    def decode_all_labels(self, style: torch.Tensor) -> torch.Tensor:
        """Decode each style (N, D) under every one-hot label: shape (N, classes, C, H, W)."""
        n, c = style.shape[0], self.num_classes
        eye = torch.eye(c, device=style.device, dtype=style.dtype)
        # (N*classes, classes) one-hots paired with each image's style repeated once per class.
        x_hat = self.decode(eye.repeat(n, 1), style.repeat_interleave(c, dim=0))
        return x_hat.view(n, c, *x_hat.shape[1:])

    def reconstruct_all_labels(self, x: torch.Tensor) -> torch.Tensor:
        """Decode x's style under every one-hot label: shape (N, classes, C, H, W)."""
        return self.decode_all_labels(self.encode(x)[1])


def recon_error(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Per-image L2 (Euclidean) distance between images, shape (N,)."""
    return (x - x_hat).flatten(1).norm(dim=1)


def check_class_count(model: StyleMemoryNet, y: torch.Tensor, dataset: str) -> None:
    """Fail clearly when labels do not fit the model's class count (checkpoint/data mismatch)."""
    if y.numel() and int(y.max()) >= model.num_classes:
        raise ValueError(f"{dataset} has labels up to {int(y.max())} but the checkpoint has "
                         f"{model.num_classes} classes; use a checkpoint trained on this dataset")


def check_classifier(model: StyleMemoryNet, what: str = "the checkpoint") -> None:
    """Fail clearly when a label-free autoencoder is given where a classifier is needed."""
    if model.label_free:
        raise ValueError(f"{what} is a label-free autoencoder (MagNet's detector), not a classifier; "
                         "pass it as the autoencoder of the magnet scores")


def check_input_shape(model: StyleMemoryNet, shape, what: str = "the data") -> None:
    """Fail clearly when images of ``shape`` (C, H, W) do not fit the model."""
    if tuple(shape) != model.input_shape:
        c, h, w = model.input_shape
        raise ValueError(f"{what} has images of shape {tuple(shape)} but the model expects ({c}, {h}, {w}) "
                         f"({c} channel{'s' if c > 1 else ''}, {h}x{w}); use a checkpoint trained on this kind of image")
