"""Every value a user can pass is checked where it enters: each case below was accepted (or gave a
traceback) before, and each now gets a one-line error naming it, or is fixed (issue 19)."""

import json
import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch

from robustgen.cli import main
from robustgen.training.config import ConfigError, load_config


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("validation") / "runs"
    assert main(["train", "--config", "smoke", "--runs-dir", str(runs), "--quiet", "--set", "data.limit_train=1024",
                 "--epochs", "1"]) == 0
    (folder,) = runs.iterdir()
    return folder


def _error(capsys, argv) -> str:
    assert main(argv) == 2  # argparse: the usage line, then one error line naming the option
    return capsys.readouterr().err.strip().splitlines()[-1]


def _fails(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("flag, value, words", [
    ("--search-steps", "-1", "at least 1"), ("--search-steps", "0", "at least 1"),
    ("--step-size", "nan", "not a finite number"), ("--step-size", "inf", "not a finite number"),
    ("--step-size", "0", "must be positive"), ("--fpr", "nan", "not a finite number"), ("--fpr", "1", "strictly between"),
    ("--n", "0", "at least 1"), ("--steps", "0", "at least 1"), ("--batch-size", "0", "at least 1"),
    ("--sanity-n", "-1", "at least 0"), ("--queries", "x", "not a whole number"),
])
def test_attack_refuses_bad_numbers(capsys, flag, value, words):
    line = _error(capsys, ["attack", "--checkpoint", "fast-mnist", flag, value])
    assert flag in line and words in line


@pytest.mark.parametrize("flag, value", [("--k", "0"), ("--k", "-1"), ("--n-queries", "-5"), ("--n-queries", "0"),
                                         ("--query", "-1")])
def test_reproduce_refuses_bad_counts(capsys, flag, value):
    assert flag in _error(capsys, ["reproduce", "--checkpoint", "fast-mnist", flag, value])


def test_reproduce_refuses_more_queries_than_test_images(capsys, tmp_path):
    err = _fails(capsys, ["reproduce", "--checkpoint", "fast-mnist", "--n-queries", "20000", "--out", str(tmp_path / "r")])
    assert "--n-queries 20000 exceeds the 10000 test images" in err


@pytest.mark.parametrize("option, value", [("--method", "pgd,pgd"), ("--score", "recon,confidence,recon")])
def test_duplicates_are_refused(capsys, option, value):
    err = _fails(capsys, ["attack", "--checkpoint", "fast-mnist", option, value, "--n", "5"])
    assert "more than once" in err and option in err


def test_an_odd_fpr_gets_its_own_column_and_keeps_the_standard_ones(run, tmp_path, capsys):
    out = tmp_path / "odd"
    assert main(["attack", "--checkpoint", str(run), "--n-val", "500", "--method", "pgd", "--eps", "0.1", "--n", "30", "--steps", "2",
                 "--score", "recon", "--fpr", "0.053", "--sanity-n", "0", "--out", str(out), "--quiet"]) == 0
    table = pd.read_csv(out / "detection.csv")
    assert {"tpr_at_fpr_1", "tpr_at_fpr_5", "tpr_at_fpr_10", "tpr_at_fpr"} <= set(table.columns)
    assert json.loads((out / "benchmark.json").read_text())["fpr"] == 0.053
    worst = pd.read_csv(out / "worst_case.csv")
    assert "eps0_floor" in worst.columns and worst["eps0_floor"].between(0, 1).all()


@pytest.mark.parametrize("command", ["attack", "reproduce"])
def test_out_naming_an_existing_file_is_refused(capsys, tmp_path, command):
    target = tmp_path / "a-file"
    target.write_text("mine")
    err = _fails(capsys, [command, "--checkpoint", "fast-mnist", "--out", str(target)])
    assert "is a file, not a folder" in err and target.read_text() == "mine"


def test_compare_out_naming_an_existing_file_is_refused(capsys, tmp_path):
    target = tmp_path / "a-file"
    target.write_text("mine")
    assert "is a file, not a folder" in _fails(capsys, ["compare", "reports/fast-mnist/attack-pgd", "--out", str(target)])


def test_detect_with_a_saved_detector_refuses_options_it_would_ignore(capsys, tmp_path):
    det = tmp_path / "det.pt"
    det.write_bytes(b"")
    for extra in (["--score", "confidence"], ["--fpr", "0.01"], ["--checkpoint", "fast-mnist"]):
        err = _fails(capsys, ["detect", "--detector", str(det), "--input", str(tmp_path), "--out",
                              str(tmp_path / "o.csv"), *extra])
        assert "cannot be used with --detector" in err and extra[0] in err


@pytest.mark.parametrize("extra", [["--config", "fast-mnist"], ["--data-dir", "/tmp"], ["--download"],
                                   ["--init", "fast-mnist"]])
def test_resume_refuses_options_it_would_ignore(capsys, run, extra):
    err = _fails(capsys, ["train", "--resume", str(run), *extra])
    assert "cannot change a run being resumed" in err and extra[0] in err


def test_train_init_that_is_no_model_is_one_line(capsys, tmp_path):
    err = _fails(capsys, ["train", "--config", "smoke", "--init", str(tmp_path / "nothing"), "--runs-dir", str(tmp_path)])
    assert err.startswith("robustgen train: error: train.init:") and "nothing" in err
    assert not any(tmp_path.iterdir())


def test_threshold_refuses_nan_scores():
    from robustgen.detectors.detector import threshold_at_fpr

    with pytest.raises(ValueError, match="NaN or infinite"):
        threshold_at_fpr(np.array([0.1, float("nan"), 0.3]), 0.05)
    with pytest.raises(ValueError, match="fpr must be a number"):
        threshold_at_fpr(np.array([0.1, 0.2]), float("nan"))


@pytest.mark.parametrize("key", ["train.lr", "train.alpha", "train.noise_std", "adversary.step_size",
                                 "adversary.ramp_epochs", "adversary.beta", "style.consistency", "style.critic",
                                 "style.noise", "style.stability", "style.sharpen", "train.weight_decay"])
@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_config_refuses_non_finite_numbers(key, value):
    with pytest.raises(ConfigError, match=f"{key} must be a finite number"):
        load_config("smoke", [f"{key}={value}"])


@pytest.mark.parametrize("override, words", [
    ("train.weight_decay=-0.1", "train.weight_decay"), ("train.eval_batch_size=0", "train.eval_batch_size"),
    ("model.channels=[32, 0]", "model.channels"), ("model.hidden=[0, 128]", "model.hidden"),
    ("model.kernel_size=-1", "model.kernel_size"), ("model.encoder=\"resnet\"", "model.encoder"),
    ("data.dataset=\"cifar\"", "data.dataset"), ("data.val_size=0", "data.val_size"),
])
def test_config_refuses_out_of_range_values(override, words):
    with pytest.raises(ConfigError, match=words):
        load_config("smoke", [override])


def test_limit_train_below_one_batch_is_refused_before_any_run_folder(capsys, tmp_path):
    err = _fails(capsys, ["train", "--config", "smoke", "--runs-dir", str(tmp_path / "runs"), "--quiet",
                          "--set", "data.limit_train=50"])
    assert "smaller than one batch" in err and not (tmp_path / "runs").exists()


def test_detector_batch_size_is_checked():
    import robustgen

    with pytest.raises(ValueError, match="batch_size must be a whole number of at least 1"):
        robustgen.ReconstructionDetector(robustgen.load_model("fast-mnist"), batch_size=0)


def test_detect_skips_a_truncated_and_a_pickled_npz_and_scores_the_rest(capsys, tmp_path):
    good = tmp_path / "good.npy"
    np.save(good, np.random.RandomState(0).rand(3, 28, 28).astype(np.float32))
    truncated = tmp_path / "cut.npz"
    np.savez(truncated, x=np.zeros((3, 28, 28), np.float32))
    truncated.write_bytes(truncated.read_bytes()[:50])
    pickled = tmp_path / "objects.npz"
    np.savez(pickled, x=np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    out = tmp_path / "scores.csv"
    code = main(["detect", "--checkpoint", "fast-mnist", "--n-val", "500", "--input", str(truncated), str(pickled), str(good),
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and len(pd.read_csv(out)) == 3  # the good file was scored; the exit code tells of the others
    assert "cut.npz: not a readable numpy file" in err and "objects.npz: holds a pickled (object) array" in err
    assert "Traceback" not in err
    assert zipfile.is_zipfile(pickled)


@pytest.mark.parametrize("kept", ["eval-val.json", "eval-val.md"])
def test_eval_never_overwrites_an_earlier_evaluation(capsys, run, tmp_path, kept):
    earlier = tmp_path / "eval"
    earlier.mkdir()
    (earlier / kept).write_text("{\"mine\": true}")
    err = _fails(capsys, ["eval", "--checkpoint", str(run), "--split", "val", "--out", str(earlier)])
    assert "already exists" in err and json.loads((earlier / kept).read_text()) == {"mine": True}
    assert [p.name for p in earlier.iterdir()] == [kept]  # nothing written beside it either


@pytest.mark.parametrize("command", [["attack", "--checkpoint", "fast-mnist"], ["train", "--config", "smoke"],
                                     ["reproduce", "--checkpoint", "fast-mnist"]])
@pytest.mark.parametrize("value", ["-1", str(2**32), str(2**64), "1e3"])
def test_a_seed_outside_what_torch_accepts_is_one_line(capsys, command, value):
    line = _error(capsys, command + ["--seed", value])
    assert "--seed" in line and ("[0, 4294967295]" in line or "not a whole number" in line)


def test_an_eps_range_reaching_below_zero_is_refused_not_trimmed(capsys, tmp_path):
    err = _fails(capsys, ["attack", "--checkpoint", "fast-mnist", "--eps=-1:0.3:0.1", "--n", "5", "--out", str(tmp_path / "r")])
    assert "reaches outside [0, 1]" in err and not (tmp_path / "r").exists()


def test_export_name_cannot_leave_the_out_folder(capsys, run, tmp_path):
    err = _fails(capsys, ["export", "--checkpoint", str(run), "--name", "../x", "--out", str(tmp_path / "out")])
    assert "model name '../x'" in err and not (tmp_path / "x.pt").exists()


def test_a_manifest_pointing_outside_its_folder_is_refused(tmp_path):
    from robustgen.checkpoint import CheckpointError
    from robustgen.pretrained import load_pretrained, pretrained_dir

    manifest = json.loads((pretrained_dir() / "fast-mnist.json").read_text())
    (tmp_path / "evil.json").write_text(json.dumps({**manifest, "name": "evil", "weights": "../fast-mnist.pt"}))
    with pytest.raises(CheckpointError, match="outside its folder"):
        load_pretrained("evil", folder=tmp_path)


def test_a_failed_export_leaves_nothing_behind(run, tmp_path, monkeypatch):
    import robustgen.inference
    from robustgen.pretrained import export

    def broken(*_, **__):
        raise RuntimeError("evaluation failed")

    monkeypatch.setattr(robustgen.inference, "evaluate", broken)
    with pytest.raises(RuntimeError, match="evaluation failed"):
        export(run, "m", tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []  # no orphan weights to block a re-export
    monkeypatch.undo()
    assert export(run, "m", tmp_path / "out").is_file() and (tmp_path / "out" / "m.pt").is_file()


# -- claims with a test that fails when they break -----------------------------------------------------
def test_a_checkpoint_write_that_fails_midway_keeps_the_old_file(tmp_path, monkeypatch):
    from robustgen import checkpoint

    path = tmp_path / "checkpoint.pt"
    checkpoint.atomic_save({"epoch": 1}, path)
    real_save = torch.save

    def torn(obj, f, *a, **k):
        real_save({"half": torch.zeros(1000)}, f)  # some bytes reach the disk...
        raise OSError("disk full")  # ...then the write fails

    monkeypatch.setattr(torch, "save", torn)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.atomic_save({"epoch": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]  # no temporary file left


class _Payload:
    marker = None

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("via", ["pickle", "torch.save"])
@pytest.mark.parametrize("kind", ["checkpoint", "detector", "pretrained"])
def test_a_malicious_pickle_is_refused_without_running_it(tmp_path, kind, via):
    from robustgen.checkpoint import CheckpointError, load_checkpoint
    from robustgen.detectors.detector import ReconstructionDetector
    from robustgen.integrity import sha256_file as sha256
    from robustgen.pretrained import load_pretrained, pretrained_dir

    _Payload.marker = tmp_path / "payload-ran"
    evil = {"format": "robustgen-checkpoint", "version": 1, "model_spec": {}, "model_state": {"w": _Payload()}}
    path = tmp_path / ("checkpoint.pt" if kind != "pretrained" else "evil.pt")
    if via == "pickle":
        with open(path, "wb") as f:
            pickle.dump(evil, f)
    else:  # a torch zip archive with an empty comment: an unsealed (legacy) file reaches the weights_only loader
        torch.save(evil, path)
    with pytest.raises(CheckpointError):
        if kind == "checkpoint":
            load_checkpoint(path)
        elif kind == "detector":
            ReconstructionDetector.load(path)
        else:
            manifest = json.loads((pretrained_dir() / "fast-mnist.json").read_text())
            (tmp_path / "evil.json").write_text(json.dumps({**manifest, "name": "evil", "weights": "evil.pt",
                                                            "sha256": sha256(path)}))
            load_pretrained("evil", folder=tmp_path)
    assert not _Payload.marker.exists()
