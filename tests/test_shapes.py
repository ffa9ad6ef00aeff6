"""The network and everything downstream for any (C, H, W): RGB, odd sizes, both encoders, and the
clear error when a model meets images of another shape."""

import numpy as np
import pytest
import torch

from robustgen import ModelSpec, ReconstructionDetector, StyleMemoryNet
from robustgen.checkpoint import CheckpointError, model_from_checkpoint, model_payload
from robustgen.data.inputs import read_inputs


@pytest.mark.parametrize("encoder, k", [("paper", 5), ("conv4", 3)])
@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 30, 22), (3, 28, 28)])
def test_decoder_rebuilds_the_input_shape(encoder, k, shape):
    c, h, w = shape
    net = StyleMemoryNet(ModelSpec(10, in_channels=c, height=h, width=w, mean=(0.5,) * c, std=(0.25,) * c,
                                   encoder=encoder, kernel_size=k))
    x = torch.rand(4, c, h, w)
    logits, style = net.encode(x)
    x_hat = net.decode(logits.softmax(1), style)
    assert logits.shape == (4, 10) and x_hat.shape == x.shape
    assert 0 <= float(x_hat.min()) and float(x_hat.max()) <= 1
    assert net.decode_all_labels(style).shape == (4, 10, c, h, w)
    # the per-channel normalisation is a buffer: it travels with the weights
    assert net.pixel_mean.shape == (c, 1, 1) and "pixel_std" in net.state_dict()


def test_spec_rejects_a_mean_per_wrong_channel_count():
    with pytest.raises(ValueError, match="one value per input channel"):
        ModelSpec(10, in_channels=3, mean=(0.5,), std=(0.5,))
    with pytest.raises(ValueError, match="encoder must be one of"):
        ModelSpec(10, encoder="resnet")


def test_checkpoint_records_shape_and_normalisation_and_old_ones_still_load():
    net = StyleMemoryNet(ModelSpec(10, in_channels=3, height=32, width=32, mean=(0.1, 0.2, 0.3), std=(0.4, 0.5, 0.6)))
    again = model_from_checkpoint(model_payload(net))
    assert again.input_shape == (3, 32, 32) and again.spec.mean == (0.1, 0.2, 0.3)
    assert torch.equal(again.pixel_std, net.pixel_std)
    # a spec written before shapes and normalisation were stored: one image_size, scalar buffers
    old = StyleMemoryNet(ModelSpec(10, mean=(0.1307,), std=(0.3081,)))
    state = {k: (v.reshape(()) if k.startswith("pixel_") else v) for k, v in old.state_dict().items()}
    spec = {"num_classes": 10, "style_dim": 16, "channels": [32, 64], "kernel_size": 5, "hidden": [256, 128],
            "image_size": 28}
    loaded = model_from_checkpoint({"model_spec": spec, "model_state": state})
    x = torch.rand(3, 1, 28, 28)
    assert torch.equal(loaded(x), old(x))
    with pytest.raises(CheckpointError, match="no model_spec"):
        model_from_checkpoint({"model_state": state, "path": "x.pt"})


@pytest.fixture(scope="module")
def rgb_detector():
    torch.manual_seed(0)
    net = StyleMemoryNet(ModelSpec(10, in_channels=3, height=16, width=12, mean=(0.5,) * 3, std=(0.3,) * 3)).eval()
    return ReconstructionDetector(net, "recon").fit(torch.rand(50, 3, 16, 12), fpr=0.1)


def test_detector_takes_channels_first_and_channels_last(rgb_detector):
    x = np.random.RandomState(0).rand(5, 3, 16, 12).astype(np.float32)
    first = rgb_detector.score(x)
    last = rgb_detector.score(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))  # (N, H, W, C), as ART users pass it
    assert np.allclose(first, last)
    with pytest.raises(ValueError, match=r"\(N, 3, 16, 12\) or \(N, 16, 12, 3\).*got \(5, 1, 16, 12\)"):
        rgb_detector.score(x[:, :1])
    with pytest.raises(ValueError, match="got \\(5, 16, 12\\)"):
        rgb_detector.score(x[:, 0])


def test_one_channel_model_fed_three_channels_names_both_shapes(tmp_path):
    from robustgen.model import check_input_shape

    net = StyleMemoryNet(ModelSpec(10))
    with pytest.raises(ValueError, match=r"\(3, 28, 28\).*expects \(1, 28, 28\)"):
        check_input_shape(net, (3, 28, 28), "colored-mnist")


def test_read_inputs_rgb_pngs_skip_what_does_not_fit(tmp_path):
    from PIL import Image

    folder = tmp_path / "pngs"
    folder.mkdir()
    rng = np.random.RandomState(0)
    Image.fromarray(rng.randint(0, 256, (16, 12, 3)).astype(np.uint8)).save(folder / "a.png")
    Image.fromarray(rng.randint(0, 256, (16, 12, 3)).astype(np.uint8)).save(folder / "b.jpg")
    Image.fromarray(rng.randint(0, 256, (16, 12)).astype(np.uint8)).save(folder / "grey.png")
    Image.fromarray(rng.randint(0, 256, (20, 12, 3)).astype(np.uint8)).save(folder / "big.png")
    batches, errors = read_inputs([folder], shape=(3, 16, 12))
    assert [b.images.shape for b in batches] == [(2, 3, 16, 12)]
    assert sorted(e.split(":")[0].rsplit("/", 1)[1] for e in errors) == ["big.png", "grey.png"]
    assert any("greyscale image, the model expects 3 channels" in e for e in errors)
    assert any("12x20 pixels, the model expects 12x16" in e for e in errors)
