import csv

import pytest
import torch
from conftest import run_config, tiny_config

from robustgen.checkpoint import CheckpointError, load_checkpoint
from robustgen.inference import evaluate
from robustgen.pretrained import load_model
from robustgen.training.config import load_config
from robustgen.training.steps import corrupt, random_shift
from robustgen.training.train import build_model, fit, lr_schedule, train_run


def test_loss_decreases_on_real_mnist(mnist_small):
    torch.manual_seed(0)
    cfg = tiny_config(epochs=3, lr=2e-3)
    model = build_model(cfg, 10)
    before = evaluate(model, *mnist_small[1])
    history = fit(model, torch.optim.Adam(model.parameters(), lr=2e-3), cfg, *mnist_small)
    after = evaluate(model, *mnist_small[1])
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[-1]["loss"] < 0.6 * history[0]["loss"]
    assert after["accuracy"] > 0.85 > before["accuracy"]
    assert after["recon_pred_softmax"] < before["recon_pred_softmax"]


def test_trained_model_reconstructs_better_under_true_label(trained_model, mnist_small):
    r = evaluate(trained_model, *mnist_small[1])
    # on mostly-correct data, predicted and true one-hot reconstructions nearly coincide
    assert r["accuracy"] > 0.9
    assert abs(r["recon_pred_onehot"] - r["recon_true"]) < 0.1 * r["recon_true"]


def test_random_shift_moves_pixels_and_keeps_mass():
    x = torch.zeros(64, 1, 28, 28)
    x[:, 0, 10:18, 10:18] = 1.0  # a square well inside the frame
    g = torch.Generator().manual_seed(0)
    out = random_shift(x, 2, g)
    assert torch.equal(out.sum((1, 2, 3)), x.sum((1, 2, 3)))  # nothing falls off the frame
    moved = (out != x).flatten(1).any(1)
    assert 0 < moved.sum() < 64  # some moved, (0, 0) offsets stayed
    rows = out[:, 0].sum(2).nonzero()[:, 1].view(64, 8)[:, 0]
    assert set(rows.tolist()) <= set(range(8, 13))
    assert torch.equal(corrupt(x, 0.0, 0)[1], x)


def test_schedules():
    one = lr_schedule("onecycle", 1.0, 100, 0.1)
    assert one(0) == pytest.approx(0.04) and one(10) == pytest.approx(1.0) and one(100) == pytest.approx(0.0)
    assert one(5) < one(10) and one(50) > one(90)
    assert lr_schedule("constant", 0.5, 100)(77) == 0.5
    assert lr_schedule("cosine", 1.0, 100)(50) == pytest.approx(0.5)


def test_checkpoint_roundtrip_gives_identical_outputs(tmp_path):
    run = train_run(run_config(tmp_path / "a", 1))
    ckpt = load_checkpoint(run)
    assert ckpt["epoch"] == 1 and ckpt["dataset"]["class_names"][3] == "3"
    model = load_model(run)
    again = load_model(run / "checkpoint.pt")
    x = torch.rand(4, 1, 28, 28)
    assert not model.training
    assert torch.equal(model.reconstruct(x), again.reconstruct(x))
    reference = build_model(run_config(tmp_path, 1), 10)
    reference.load_state_dict(ckpt["model_state"])
    assert torch.equal(reference.eval()(x), model(x))
    assert (run / "config.toml").is_file() and (run / "environment.json").is_file()
    assert not list(run.glob(".*tmp"))  # atomic write left no temporary file


def test_resume_continues_from_the_right_epoch(tmp_path):
    straight = train_run(run_config(tmp_path / "straight", 3))
    first = train_run(run_config(tmp_path / "resumed", 2))  # stands in for a run killed after epoch 2
    metrics = (first / "metrics.csv").read_text().splitlines(keepends=True)
    # killed after the checkpoint of epoch 2 was written and before its row was: the row comes back
    (first / "metrics.csv").write_text("".join(metrics[:-1]))
    config = (first / "config.toml").read_text()
    resumed = train_run(resume=first, epochs=3)
    assert resumed == first
    rows = list(csv.DictReader((first / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert (first / "metrics.csv").read_text().startswith("".join(metrics))  # appended to, never rewritten
    after = (first / "config.toml").read_text()
    assert after.startswith(config) and "# resumed after epoch 2" in after and "epochs = 3" in after[len(config):]
    a, b = load_checkpoint(straight), load_checkpoint(resumed)
    assert b["epoch"] == 3
    for k in a["model_state"]:
        assert torch.allclose(a["model_state"][k], b["model_state"][k], atol=1e-6), k
    with pytest.raises(ValueError, match="already finished its 3 epochs"):
        train_run(resume=first)


def test_runs_never_overwrite(tmp_path):
    a = train_run(run_config(tmp_path, 1))
    b = train_run(run_config(tmp_path, 1))
    assert a != b and a.is_dir() and b.is_dir()


def test_bad_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_model(tmp_path)
    (tmp_path / "checkpoint.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="damaged, truncated or not written by robustgen"):
        load_model(tmp_path)
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a robustgen checkpoint"):
        load_model(tmp_path / "other.pt")


@pytest.mark.parametrize("adversary", [[], ["adversary.method=pgd", "adversary.steps=1"]], ids=["clean", "pgd"])
def test_bfloat16_autocast_trains_float32_weights_and_really_changes_the_arithmetic(mnist_small, adversary):
    (x, y), val = mnist_small
    runs = {}
    for precision in ("float32", "bfloat16"):
        torch.manual_seed(0)
        cfg = load_config("smoke", ["train.epochs=1", "train.lr=2e-3", f"train.precision={precision}", *adversary])
        model = build_model(cfg, 10)
        history = fit(model, torch.optim.Adam(model.parameters(), lr=2e-3), cfg, (x[:768], y[:768]), val)
        assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay float32
        assert history[-1]["loss"] == history[-1]["loss"] < 10  # finite, and learning
        runs[precision] = (model.state_dict(), history[-1]["loss"])
    diff = max(float((runs["float32"][0][k].float() - runs["bfloat16"][0][k].float()).abs().max()) for k in runs["float32"][0])
    assert diff > 1e-4  # the autocast was on: bfloat16 products moved the weights elsewhere
    assert abs(runs["float32"][1] - runs["bfloat16"][1]) < 0.1 * runs["float32"][1]  # ... but trained alike


def test_an_unknown_precision_is_refused_by_name():
    with pytest.raises(ValueError, match="train.precision must be auto, float32 or bfloat16"):
        load_config("smoke", ["train.precision=float16"])


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bfloat16_only_on_bfloat16_hardware_and_the_run_records_it(tmp_path, monkeypatch, native):
    import json

    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        monkeypatch.setattr(torch.cpu, probe, lambda: native, raising=False)
    cfg = run_config(tmp_path, 1)
    assert cfg.train.precision == "auto"  # the default
    run = train_run(cfg)
    wanted = "bfloat16" if native else "float32"
    assert f'precision = "{wanted}"' in (run / "config.toml").read_text()
    assert json.loads((run / "environment.json").read_text())["native_bfloat16"] is native
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):  # resumed on the other kind of CPU
        monkeypatch.setattr(torch.cpu, probe, lambda: not native, raising=False)
    resumed = train_run(resume=run, epochs=2)  # ... keeps what the run ran with
    assert load_checkpoint(resumed)["config"]["train"]["precision"] == wanted


def test_init_fine_tunes_from_saved_weights_and_refuses_another_architecture(tmp_path):
    base = train_run(run_config(tmp_path / "base", 1))
    start = load_model(base)
    cfg = run_config(tmp_path / "tuned", 1)
    cfg.train.init, cfg.train.lr = str(base), 1e-12  # a rate too small to move a weight: the start shows
    tuned = train_run(cfg)
    after = load_checkpoint(tuned)
    for k, v in start.state_dict().items():
        assert torch.allclose(after["model_state"][k], v, atol=1e-6), k
    assert f'init = "{base}"' in (tuned / "config.toml").read_text()  # the provenance is in the run's record
    cfg.train.init = ""
    fresh = load_checkpoint(train_run(cfg))  # the same seed without init starts elsewhere
    assert not torch.allclose(fresh["model_state"]["enc_top.weight"], start.state_dict()["enc_top.weight"])
    wider = run_config(tmp_path / "wider", 1)
    wider.model.hidden, wider.train.init = [64, 32], str(base)
    with pytest.raises(ValueError, match="train.init: .* has model hidden = .*same architecture"):
        train_run(wider)
    wider.train.init = str(tmp_path / "missing")
    with pytest.raises(ValueError, match="train.init: .*missing"):
        train_run(wider)
    assert not (tmp_path / "wider").exists()  # refused before a run folder was made


def test_a_run_written_before_train_precision_existed_resumes_in_float32(tmp_path, monkeypatch):
    from robustgen.training import train as train_module

    run = train_run(run_config(tmp_path, 1))
    real = train_module.ckpt_io.load_checkpoint

    def old_format(path):
        state = real(path)
        del state["config"]["train"]["precision"]
        return state

    monkeypatch.setattr(train_module.ckpt_io, "load_checkpoint", old_format)
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):  # a CPU where auto would mean bfloat16
        monkeypatch.setattr(torch.cpu, probe, lambda: True, raising=False)
    train_run(resume=run, epochs=2)
    monkeypatch.undo()
    assert load_checkpoint(run)["config"]["train"]["precision"] == "float32"
