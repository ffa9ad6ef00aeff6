"""robustgen: style-memory networks (Wiyatno & Orchard, 2018) for adversarial-input detection."""

from .checkpoint import load_checkpoint, load_model, save_checkpoint
from .compare import read_report
from .config import Config, load_config
from .data import dataset_info, load_dataset, read_idx
from .detect import ReconstructionDetector
from .guarded import GuardedClassifier
from .model import ModelSpec, StyleMemoryNet, recon_error
from .pretrained import list_pretrained
from .train import evaluate, fit, train_run

__version__ = "0.1.0"

__all__ = [
    "Config", "GuardedClassifier", "ModelSpec", "ReconstructionDetector", "StyleMemoryNet", "dataset_info", "evaluate", "fit",
    "list_pretrained", "load_checkpoint", "load_config", "load_dataset", "load_model", "read_idx", "read_report", "recon_error",
    "save_checkpoint", "train_run",
]
