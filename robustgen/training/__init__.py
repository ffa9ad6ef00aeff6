"""Training: the typed config and presets, the loss and its [style] terms, adversarial training, the
step runners (eager, CUDA graph, DDP) and the run that ``robustgen train`` does."""
