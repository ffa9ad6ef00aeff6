"""Evaluation: the attack benchmark and its per-input worst case, sanity checks, detection metrics,
the paper's experiments, the style measures and the comparison of reports."""
