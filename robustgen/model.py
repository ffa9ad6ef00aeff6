"""The style-memory network (Wiyatno & Orchard, 2018, section 4).

Encoder (paper): conv 32 filters 5x5 stride 2 -> conv 64 filters 5x5 stride 2 -> FC 256 -> FC 128,
all ReLU, then a top layer of ``num_classes`` softmax units plus ``style_dim`` logistic "style
memory" units. The decoder mirrors the encoder and rebuilds the image from (class vector, style).

Contracts (DESIGN.md): inputs are float tensors in [0, 1] of shape (N, 1, H, W); ``model(x)``
returns raw logits (N, C) so that torchattacks/ART can use it as a plain classifier; softmax is
applied only where the decoder needs it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

# Mean and std of the MNIST training pixels; the model normalises internally so that its inputs
# stay in [0, 1] (the space attacks work in). They are buffers, so they travel with the weights.
_PIXEL_MEAN = 0.1307
_PIXEL_STD = 0.3081


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a :class:`StyleMemoryNet` (stored inside checkpoints)."""

    num_classes: int
    style_dim: int = 16
    channels: tuple[int, int] = (32, 64)
    kernel_size: int = 5
    hidden: tuple[int, int] = (256, 128)
    image_size: int = 28
    critic_hidden: int = -1  # training-only class critic on the style: -1 none, 0 linear, >0 MLP width
    separate_style: bool = False  # style units on their own encoder branch instead of the shared top layer

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        d = dict(d)
        d["channels"] = tuple(d.get("channels", (32, 64)))
        d["hidden"] = tuple(d.get("hidden", (256, 128)))
        return cls(**d)


class StyleMemoryNet(nn.Module):
    """Classifier with a style memory and a decoder.

    Shapes: x (N, 1, S, S) in [0, 1] -> logits (N, C), style (N, D) in (0, 1);
    decode(class_vector (N, C), style (N, D)) -> x_hat (N, 1, S, S) in (0, 1).

    Example::

        net = StyleMemoryNet(ModelSpec(num_classes=10))
        logits, style = net.encode(x)
        x_hat = net.reconstruct(x, mode="softmax")
    """

    def __init__(self, spec: ModelSpec):
        super().__init__()
        if spec.image_size % 4 != 0:
            raise ValueError(f"image_size must be a multiple of 4 (two stride-2 convs), got {spec.image_size}")
        self.spec = spec
        self.meta: dict = {}  # filled by the checkpoint loader: dataset, config, epoch, path
        c1, c2 = spec.channels
        h1, h2 = spec.hidden
        k, pad = spec.kernel_size, spec.kernel_size // 2
        self._grid = spec.image_size // 4  # 28 -> 14 -> 7
        flat = c2 * self._grid * self._grid
        top = spec.num_classes + spec.style_dim

        self.register_buffer("pixel_mean", torch.tensor(_PIXEL_MEAN))
        self.register_buffer("pixel_std", torch.tensor(_PIXEL_STD))

        self.enc_conv1 = nn.Conv2d(1, c1, k, stride=2, padding=pad)
        self.enc_conv2 = nn.Conv2d(c1, c2, k, stride=2, padding=pad)
        self.enc_fc1 = nn.Linear(flat, h1)
        self.enc_fc2 = nn.Linear(h1, h2)
        self.enc_top = nn.Linear(h2, spec.num_classes if spec.separate_style else top)
        if spec.separate_style:  # a second encoder of the same shape that only computes the style
            self.sty_conv1 = nn.Conv2d(1, c1, k, stride=2, padding=pad)
            self.sty_conv2 = nn.Conv2d(c1, c2, k, stride=2, padding=pad)
            self.sty_fc1 = nn.Linear(flat, h1)
            self.sty_fc2 = nn.Linear(h1, h2)
            self.sty_top = nn.Linear(h2, spec.style_dim)
            # Batch-normalised style logits: without it Adam drives this branch, which only the
            # decoder's small gradient trains, into a saturated constant style within ~20 steps.
            self.sty_norm = nn.BatchNorm1d(spec.style_dim)

        self.dec_fc1 = nn.Linear(top, h2)
        self.dec_fc2 = nn.Linear(h2, h1)
        self.dec_fc3 = nn.Linear(h1, flat)
        # output_padding=1 undoes the rounding of the stride-2 convs: 7 -> 14 -> 28.
        self.dec_deconv1 = nn.ConvTranspose2d(c2, c1, k, stride=2, padding=pad, output_padding=1)
        self.dec_deconv2 = nn.ConvTranspose2d(c1, 1, k, stride=2, padding=pad, output_padding=1)

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

    # -- encoder -------------------------------------------------------------------------------
    def features(self, x: torch.Tensor, branch: str = "enc") -> torch.Tensor:
        """Penultimate (FC 128) activations, shape (N, hidden[1]), of the shared encoder (``enc``) or
        of the separate style branch (``sty``)."""
        conv1, conv2, fc1, fc2 = (getattr(self, f"{branch}_{n}") for n in ("conv1", "conv2", "fc1", "fc2"))
        h = (x - self.pixel_mean) / self.pixel_std
        h = F.relu(conv1(h))
        h = F.relu(conv2(h))
        h = h.flatten(1)  # (N, c2 * grid * grid)
        h = F.relu(fc1(h))
        return F.relu(fc2(h))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (logits (N, C), style (N, D) in (0, 1))."""
        if self.spec.separate_style:
            return self.enc_top(self.features(x)), torch.sigmoid(self.sty_norm(self.sty_top(self.features(x, "sty"))))
        top = self.enc_top(self.features(x))
        logits, style_pre = top.split([self.num_classes, self.style_dim], dim=1)
        return logits, torch.sigmoid(style_pre)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw logits (N, C): the plain-classifier view used by attacks."""
        if self.spec.separate_style:  # the style branch plays no part in the classification
            return self.enc_top(self.features(x))
        return self.encode(x)[0]

    # -- decoder -------------------------------------------------------------------------------
    def decode(self, class_vector: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """Rebuild images from a class vector (N, C) (softmax or one-hot) and a style (N, D)."""
        h = torch.cat([class_vector, style], dim=1)
        h = F.relu(self.dec_fc1(h))
        h = F.relu(self.dec_fc2(h))
        h = F.relu(self.dec_fc3(h))
        h = h.view(-1, self.spec.channels[1], self._grid, self._grid)  # (N, c2, grid, grid)
        h = F.relu(self.dec_deconv1(h))
        return torch.sigmoid(self.dec_deconv2(h))

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
        """The decoder's class input for ``logits`` under ``mode`` (see :meth:`reconstruct`)."""
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
        """Decode each style (N, D) under every one-hot label: shape (N, C, 1, S, S)."""
        n, c = style.shape[0], self.num_classes
        eye = torch.eye(c, device=style.device, dtype=style.dtype)
        # (N*C, C) one-hots paired with each image's style repeated C times.
        x_hat = self.decode(eye.repeat(n, 1), style.repeat_interleave(c, dim=0))
        return x_hat.view(n, c, *x_hat.shape[1:])

    def reconstruct_all_labels(self, x: torch.Tensor) -> torch.Tensor:
        """Decode x's style under every one-hot label: shape (N, C, 1, S, S)."""
        return self.decode_all_labels(self.encode(x)[1])


def recon_error(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Per-image L2 (Euclidean) distance between images, shape (N,)."""
    return (x - x_hat).flatten(1).norm(dim=1)


def check_class_count(model: StyleMemoryNet, y: torch.Tensor, dataset: str) -> None:
    """Fail clearly when labels do not fit the model's class count (checkpoint/data mismatch)."""
    if y.numel() and int(y.max()) >= model.num_classes:
        raise ValueError(f"{dataset} has labels up to {int(y.max())} but the checkpoint has "
                         f"{model.num_classes} classes; use a checkpoint trained on this dataset")
