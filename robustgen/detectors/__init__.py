"""Detectors: the detector API (fit at a target FPR, score, detect, save/load), its scores, the
combined C+1 classifier that detector-aware attacks use, and the ART adapter."""
