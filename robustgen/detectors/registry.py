"""Every detector score by name: robustgen's own (:mod:`.scores`) and the baselines (:mod:`.baselines`)."""

from __future__ import annotations

from ..model import StyleMemoryNet
from .baselines import Magnet, MagnetJSD, Mahalanobis
from .ood import OOD_SCORES
from .scores import Confidence, Energy, Entropy, Joint, JointSum, Margin, MaxLogit, Posterior, Recon, ReconOnehot, Score

SCORES: dict[str, type[Score]] = {cls.name: cls for cls in (Recon, ReconOnehot, Margin, Confidence, Posterior, Joint,
                                                            JointSum, Mahalanobis, Magnet, MagnetJSD, Energy, MaxLogit,
                                                            Entropy, *OOD_SCORES)}
OOD = tuple(cls.name for cls in OOD_SCORES)  # pytorch-ood's detectors, an optional extra: not in --score all
AUTOENCODER_SCORES = tuple(name for name, cls in SCORES.items() if cls.needs_autoencoder)
DECODER_SCORES = tuple(name for name, cls in SCORES.items() if cls.needs_decoder)
CLASSIFIER_SCORES = tuple(name for name, cls in SCORES.items() if not cls.needs_decoder and not cls.needs_autoencoder)


def check_score_name(name: str) -> str:
    if name not in SCORES:
        raise ValueError(f"unknown detector score {name!r}; use one of {', '.join(SCORES)}")
    return name


def make_score(name: str, autoencoder: StyleMemoryNet | None = None) -> Score:
    """A fresh score; the magnet scores need ``autoencoder`` (a label-free network), the others refuse one."""
    cls = SCORES[check_score_name(name)]
    if cls.needs_autoencoder:
        if autoencoder is None:
            raise ValueError(f"score {name!r} needs a label-free autoencoder (robustgen train --config mnist-ae; "
                             "on the command line --autoencoder RUN)")
        return cls(autoencoder)
    if autoencoder is not None:
        raise ValueError(f"score {name!r} uses no autoencoder; give one only with {', '.join(AUTOENCODER_SCORES)}")
    return cls()
