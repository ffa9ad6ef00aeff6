import tomllib

import pytest

from robustgen.training.config import (
    ConfigError,
    config_from_dict,
    list_presets,
    load_config,
    to_toml,
)


def test_presets_exist_and_hold_paper_recipe():
    assert {"smoke", "fast-mnist", "paper-mnist", "paper-emnist"} <= set(list_presets())
    paper = load_config("paper-mnist")
    assert (paper.train.lr, paper.train.epochs, paper.train.alpha) == (1e-5, 250, 0.05)
    assert paper.model.channels == [32, 64] and paper.model.hidden == [256, 128] and paper.model.style_dim == 16
    assert load_config("paper-emnist").data.dataset == "emnist-letters"
    assert load_config("fast-mnist").train.epochs <= 20


def test_overrides_are_typed():
    cfg = load_config("smoke", ["train.lr=1e-4", "train.epochs=3", "data.dataset=idx:/some/folder",
                                "data.limit_train=none", "train.cuda_graph=false", "model.channels=[16, 32]"])
    assert cfg.train.lr == 1e-4 and cfg.train.epochs == 3 and cfg.data.dataset == "idx:/some/folder"
    assert cfg.data.limit_train is None and cfg.train.cuda_graph is False and cfg.model.channels == [16, 32]
    assert load_config("smoke", ["train.lr=1"]).train.lr == 1.0  # int accepted for a float key


@pytest.mark.parametrize("override, message", [
    ("train.lrate=1", "unknown config key 'train.lrate'"),
    ("train.epochs=2.5", "train.epochs must be of type int"),
    ("train.epochs=0", "train.epochs must be at least 1, got 0"),
    ("train.batch_size=0", "train.batch_size must be at least 1, got 0"),
    ("train.noise_std=-0.1", "train.noise_std must be non-negative, got -0.1"),
    ("train.alpha=-1", "train.alpha must be non-negative, got -1.0"),
    ("train.lr_schedule=linear", "constant, cosine or onecycle"),
    ("train", "section.key=value"),
    ("model.channels=[1, 2, 3]", "two entries"),
])
def test_bad_overrides(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("smoke", [override])


def test_unknown_preset_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset 'nope'; use one of"):
        load_config("nope")
    with pytest.raises(ConfigError, match="not found"):
        load_config(str(tmp_path / "missing.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(str(bad))


def test_toml_roundtrip(tmp_path):
    cfg = load_config("fast-mnist", ['data.data_dir="/x y/\\"q\\""', "train.seed=7"])
    path = tmp_path / "c.toml"
    path.write_text(to_toml(cfg))
    assert load_config(str(path)) == cfg
    assert config_from_dict(tomllib.loads(to_toml(cfg))) == cfg


def test_every_preset_loads_and_robust_style_mnist_composes_two_presets():
    for name in list_presets():
        load_config(name)  # parsing and validation raise on a bad key or value
    rs, r, s = (load_config(n).to_dict() for n in ("robust-style-mnist", "robust-mnist", "style-mnist"))
    assert rs["adversary"] == r["adversary"] and rs["model"] == r["model"] and rs["data"] == r["data"]
    assert {k: v for k, v in rs["train"].items() if k != "alpha"} == {k: v for k, v in r["train"].items() if k != "alpha"}
    assert rs["train"]["alpha"] == s["train"]["alpha"] == 0.5
    # the critic weight measured on the robust recipe (0.1) differs from style-mnist's (0.5), and
    # style-mnist's style has its own encoder branch while the robust recipe keeps the shared one
    assert {**rs["style"], "critic": 0.5} == s["style"]
    assert s["model"]["separate_style"] and not rs["model"]["separate_style"]
