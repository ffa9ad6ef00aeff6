"""robustgen: style-memory networks (Wiyatno & Orchard, 2018) for adversarial-input detection."""

from .checkpoint import load_checkpoint, save_checkpoint
from .classifier import Classifier, as_classifier
from .data import dataset_info, list_datasets, load_dataset, read_idx
from .detectors.detector import (
    ConfidenceDetector,
    Detector,
    MagnetDetector,
    MahalanobisDetector,
    ReconstructionDetector,
    make_detector,
)
from .detectors.guarded import GuardedClassifier
from .evaluation.compare import read_report
from .evaluation_run import evaluate  # the adaptive worst case in one call (accuracy: robustgen.inference.evaluate)
from .model import ModelSpec, StyleMemoryNet, recon_error
from .pretrained import list_pretrained, load_model
from .training.config import Config, load_config
from .training.train import fit, train_run

__version__ = "0.1.0"

__all__ = [
    "Classifier", "ConfidenceDetector", "Config", "Detector", "GuardedClassifier", "MagnetDetector", "MahalanobisDetector",
    "ModelSpec", "as_classifier", "ReconstructionDetector", "StyleMemoryNet", "dataset_info", "evaluate", "fit", "list_datasets",
    "list_pretrained", "load_checkpoint", "load_config", "load_dataset", "load_model", "make_detector", "read_idx",
    "read_report", "recon_error", "save_checkpoint", "train_run",
]
