import json
import shutil

import pytest
import torch

import robustgen
from robustgen.checkpoint import CheckpointError, save_checkpoint
from robustgen.inference import evaluate
from robustgen.pretrained import export, list_pretrained, load_pretrained, pretrained_dir, read_manifest

SHIPPED = ["fast-mnist", "robust-mnist", "robust-mnist-conv4-pgd"]


def test_the_shipped_models_are_listed():
    assert set(SHIPPED) <= set(list_pretrained())


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_loads_and_reproduces_its_recorded_accuracy(name):
    model = robustgen.load_model(name)  # checks the SHA-256 on the way
    manifest = read_manifest(name)
    assert model.meta["pretrained"] == name and model.meta["config"]["name"] == name
    assert manifest["config"]["train"] and manifest["training_metrics"]["epoch"] == manifest["config"]["train"]["epochs"]
    x, y = robustgen.load_dataset("mnist", "test", limit=1000)
    with torch.no_grad():
        acc = evaluate(model, x, y)["accuracy"]
    assert acc == manifest["test"]["accuracy_first_1000"]
    assert acc >= 0.98


def test_a_corrupted_weight_file_is_refused(tmp_path):
    name = "robust-mnist"
    for suffix in (".pt", ".json"):
        shutil.copy(str(pretrained_dir() / f"{name}{suffix}"), tmp_path / f"{name}{suffix}")
    weights = tmp_path / f"{name}.pt"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt: SHA-256"):
        load_pretrained(name, folder=tmp_path)
    weights.unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_pretrained(name, folder=tmp_path)


def test_an_unknown_name_lists_the_shipped_ones():
    with pytest.raises(CheckpointError, match="robust-mnist"):
        robustgen.load_model("no-such-model")


def test_export_round_trip_and_no_overwrite(trained_model, tmp_path, capsys):
    cfg = robustgen.load_config("smoke")
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoint.pt", model=trained_model, epoch=8, config=cfg.to_dict(),
                    dataset={"name": "mnist", "num_classes": 10, "class_names": [str(i) for i in range(10)]})
    (run / "config.toml").write_text('name = "smoke"\n# resumed after epoch 6 on 2026-12-06T17:42:11+0000: epochs = 8\n')
    manifest = export(run, "tiny", tmp_path / "out")
    record = json.loads(manifest.read_text())
    assert record["resumed"] == ["resumed after epoch 6 on 2026-12-06T17:42:11+0000: epochs = 8"]  # another schedule
    loaded = load_pretrained("tiny", folder=tmp_path / "out")
    for (k, a), b in zip(trained_model.state_dict().items(), loaded.state_dict().values()):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-4), k  # float16 weights
    x, y = robustgen.load_dataset("mnist", "test", limit=1000)
    with torch.no_grad():
        assert evaluate(loaded, x, y)["accuracy"] == record["test"]["accuracy_first_1000"]
    with pytest.raises(FileExistsError):
        export(run, "tiny", tmp_path / "out")
    from robustgen.cli import main

    (tmp_path / "out" / "notes.json").write_text("{}")  # not a manifest: not listed
    assert main(["models", "--dir", str(tmp_path / "out"), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["name"], r["clean_accuracy"], r["recommended"]) for r in rows] == [("tiny", record["test"]["accuracy"], False)]
    assert main(["models", "--dir", str(tmp_path / "nowhere")]) == 2
    assert "--dir" in capsys.readouterr().err
    # loaded from where it was exported, by its manifest or its weights (SHA-256 checked), and named by that file
    for path in (tmp_path / "out" / "tiny.json", tmp_path / "out" / "tiny.pt"):
        again = robustgen.load_model(path)
        assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), again.state_dict().values()))
        assert again.meta["path"] == str(tmp_path / "out" / "tiny.json") and again.meta["pretrained"] == "tiny"
    data = bytearray((tmp_path / "out" / "tiny.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "out" / "tiny.pt").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt: SHA-256"):
        robustgen.load_model(tmp_path / "out" / "tiny.pt")


@pytest.mark.parametrize("name, encoder", [("robust-fashion", "paper"), ("robust-fashion-conv4", "conv4"),
                                           ("robust-fashion-conv4-ema", "conv4")])
def test_the_shipped_fashion_models_load_with_their_shape_and_normalisation(name, encoder):
    model = robustgen.load_model(name)  # SHA-256 checked
    manifest = read_manifest(name)
    assert model.input_shape == (1, 28, 28) and model.meta["dataset"]["name"] == "fashion-mnist"
    assert model.spec.encoder == encoder
    assert manifest["normalisation"]["mean"] == pytest.approx([float(model.pixel_mean.flatten()[0])], abs=1e-3)
    assert manifest["config"]["adversary"]["eps"] == 0.1
    try:  # the accuracy check needs the Fashion-MNIST files (Debian's package or a data folder)
        x, y = robustgen.load_dataset("fashion-mnist", "test", limit=1000)
    except robustgen.data.DataError:
        return  # CI has no Fashion-MNIST files: the weights, shape and normalisation were checked above
    with torch.no_grad():
        assert evaluate(model, x, y)["accuracy"] == manifest["test"]["accuracy_first_1000"]


def test_the_shipped_fashion_autoencoder_matches_the_fashion_model():
    from robustgen.detectors.baselines import check_autoencoder

    ae = robustgen.load_model("fashion-ae")  # SHA-256 checked
    assert ae.label_free and ae.meta["dataset"]["name"] == "fashion-mnist"
    assert "accuracy" not in read_manifest("fashion-ae")["test"]
    for name in ("robust-fashion", "robust-fashion-conv4", "robust-fashion-conv4-ema"):  # the magnet scores of each use it
        classifier = robustgen.load_model(name)
        assert check_autoencoder(ae, classifier) is ae
        assert ae.spec.mean == classifier.spec.mean  # the same training split's statistics


def test_the_shipped_autoencoder_records_its_reconstruction_error_not_an_accuracy():
    model = robustgen.load_model("mnist-ae")  # the magnet scores' autoencoder, SHA-256 checked
    manifest = read_manifest("mnist-ae")
    assert model.label_free and model.input_shape == (1, 28, 28)
    assert "accuracy" not in manifest["test"]  # a label-free network has no accuracy to record
    x, y = robustgen.load_dataset("mnist", "test", limit=1000)
    with torch.no_grad():
        err = evaluate(model, x, y)["recon_pred_softmax"]
    assert err == pytest.approx(manifest["test"]["recon_first_1000"], rel=1e-6)
    assert err < 3.0  # the reconstruction a magnet score is built on


def test_export_of_an_autoencoder_records_reconstruction_error(tmp_path):
    from robustgen.model import ModelSpec, StyleMemoryNet

    torch.manual_seed(0)
    ae = StyleMemoryNet(ModelSpec(num_classes=10, channels=(8, 16), hidden=(128, 64), label_free=True))
    cfg = robustgen.load_config("smoke")
    save_checkpoint(tmp_path / "ae" / "checkpoint.pt", model=ae, epoch=1, config=cfg.to_dict(),
                    dataset={"name": "mnist", "num_classes": 10, "class_names": [str(i) for i in range(10)]})
    record = json.loads(export(tmp_path / "ae", "tiny-ae", tmp_path / "out").read_text())
    assert set(record["test"]) == {"n", "recon", "recon_first_1000"}
    loaded = load_pretrained("tiny-ae", folder=tmp_path / "out")
    x, y = robustgen.load_dataset("mnist", "test", limit=1000)
    with torch.no_grad():
        assert evaluate(loaded, x, y)["recon_pred_softmax"] == pytest.approx(record["test"]["recon_first_1000"], rel=1e-6)


def test_the_models_command_lists_every_shipped_model_from_its_manifest(capsys):
    from robustgen.cli import main

    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert set(rows) == set(list_pretrained())
    assert rows["robust-mnist"]["clean_accuracy"] == read_manifest("robust-mnist")["test"]["accuracy"]
    assert rows["robust-mnist"]["training"] == "pgd eps 0.3, 5 steps" and rows["fast-mnist"]["training"] == "clean"
    assert rows["mnist-ae"]["clean_accuracy"] is None and rows["mnist-ae"]["training"].startswith("autoencoder")
    assert rows["robust-fashion"]["dataset"] == "fashion-mnist" and not rows["robust-fashion"]["recommended"]
    assert rows["robust-fashion-conv4-ema"]["recommended"]  # it replaced robust-fashion-conv4, which stays loadable
    assert not rows["robust-fashion-conv4"]["recommended"]
    assert rows["robust-fashion-conv4-ema"]["training"] == "trades eps 0.1, 10 steps, beta 6, weight average 0.999"
    assert rows["robust-fashion-conv4"]["training"] == "trades eps 0.1, 10 steps, beta 6"
    assert rows["robust-mnist-conv4-pgd"]["recommended"] and not rows["robust-mnist"]["recommended"]  # replaced, loadable
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "| robust-mnist-conv4-pgd (recommended) | mnist | conv4 | pgd eps 0.3, 10 steps | 18 | 99.42 % |" in out
    assert "| robust-mnist | mnist | paper | pgd eps 0.3, 5 steps | 22 | 99.34 % |" in out


def test_each_dataset_recommends_one_shipped_classifier_of_its_own():
    from robustgen.pretrained import RECOMMENDED, describe

    for dataset, name in RECOMMENDED.items():
        row = describe(name)
        assert row["dataset"] == dataset and row["recommended"] and row["clean_accuracy"] is not None
    recommended = [n for n in list_pretrained() if describe(n)["recommended"]]
    assert sorted(recommended) == sorted(RECOMMENDED.values())  # fast-mnist, the autoencoders: not recommended


@pytest.mark.parametrize("adversary, words", [({"method": "trades", "steps": 10, "beta": 6.0}, "trades eps 0.3, 10 steps, beta 6"),
                                              ({"method": "nfgsm", "nfgsm_noise": 1.0}, "nfgsm eps 0.3, noise 1 eps"),
                                              ({"method": "pgd", "steps": 10, "awp": 0.005}, "pgd eps 0.3, 10 steps, awp 0.005")])
def test_describe_names_each_training_recipe(tmp_path, adversary, words):
    from robustgen.pretrained import describe

    manifest = read_manifest("robust-mnist")
    manifest["config"]["adversary"].update(adversary)
    (tmp_path / "robust-mnist.json").write_text(json.dumps(manifest))
    assert describe("robust-mnist", tmp_path)["training"] == words
