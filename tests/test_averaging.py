"""Weight averaging (train.ema): the saved model is the moving average, and a resumed run ends where an
uninterrupted one does."""

import csv

import pytest
import torch
from conftest import run_config

from robustgen.checkpoint import load_checkpoint
from robustgen.pretrained import load_model
from robustgen.training.averaging import WeightAverage
from robustgen.training.config import ConfigError, load_config
from robustgen.training.train import build_model, train_run


def test_the_average_is_the_exponential_moving_average_of_the_trained_weights():
    model = build_model(load_config("smoke"), 10)
    avg = WeightAverage(model, 0.75)
    seen = []
    for step in range(3):
        with torch.no_grad():
            model.enc_top.weight.add_(torch.randn_like(model.enc_top.weight))
        seen.append(model.enc_top.weight.detach().clone())
        avg.update()
    expected = 0.75 * (0.75 * seen[0] + 0.25 * seen[1]) + 0.25 * seen[2]  # the first update copies
    assert torch.allclose(avg.module.enc_top.weight, expected, atol=1e-6)
    assert not torch.allclose(avg.module.enc_top.weight, model.enc_top.weight)


def test_a_run_saves_the_average_and_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path):
    straight = train_run(run_config(tmp_path / "straight", 3, "train.ema=0.9"))
    first = train_run(run_config(tmp_path / "resumed", 2, "train.ema=0.9"))
    resumed = train_run(resume=first, epochs=3)
    a, b = load_checkpoint(straight), load_checkpoint(resumed)
    for key in ("model_state", "trained_state"):
        sa, sb = (a[key], b[key]) if key == "model_state" else (a["extra"][key], b["extra"][key])
        for k in sa:
            assert torch.allclose(sa[k], sb[k], atol=1e-6), (key, k)
    trained, averaged = a["extra"]["trained_state"], a["model_state"]
    assert not torch.allclose(trained["enc_top.weight"], averaged["enc_top.weight"], atol=1e-4)
    model = load_model(straight)  # what every loader gets is the average
    assert torch.equal(model.enc_top.weight, averaged["enc_top.weight"])
    rows = list(csv.DictReader((straight / "metrics.csv").open()))
    assert len(rows) == 3 and all(0 < float(r["val_accuracy_trained"]) <= 1 for r in rows)


@pytest.mark.parametrize("value", ["1.0", "-0.5", "nan"])
def test_a_bad_decay_is_refused_by_name(value):
    with pytest.raises(ConfigError, match="train.ema"):
        load_config("smoke", [f"train.ema={value}"])
