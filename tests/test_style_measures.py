import numpy as np
import pytest
import torch

from robustgen.evaluation.style_measures import decode_sensitivity, probe_accuracy
from robustgen.model import ModelSpec, StyleMemoryNet


def test_probe_reads_a_style_that_copies_the_label():
    rng = np.random.RandomState(0)
    y_fit, y_eval = rng.randint(0, 10, 500), rng.randint(0, 10, 300)
    onehot = np.eye(10)
    assert probe_accuracy(onehot[y_fit], y_fit, onehot[y_eval], y_eval) == 1.0
    noise_fit, noise_eval = rng.rand(500, 16), rng.rand(300, 16)  # a style with no class in it
    assert probe_accuracy(noise_fit, y_fit, noise_eval, y_eval) < 0.25


def test_a_decoder_that_ignores_the_label_has_zero_sensitivity():
    torch.manual_seed(0)
    model = StyleMemoryNet(ModelSpec(num_classes=10)).eval()
    style, pred = torch.rand(40, 16), torch.randint(0, 10, (40,))
    sensitivity, drawn = decode_sensitivity(model, style, pred, err_clean=1.0)
    assert sensitivity > 0.01  # a random decoder does read its class input
    with torch.no_grad():
        model.dec_fc1.weight[:, :10] = 0.0  # cut the class vector out of the decoder
    sensitivity, drawn = decode_sensitivity(model, style, pred, err_clean=1.0)
    assert sensitivity == pytest.approx(0.0, abs=1e-6)
    # every label gives the same image, so at most one label per style can be "drawn as" itself
    assert drawn <= 0.1 + 1e-9
