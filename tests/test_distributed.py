"""torchrun scale-out on the CPU (gloo, 2 processes): a sharded attack report is identical to the
single-process one, and DDP training gives the single-process weights. Each test launches real
``python -m torch.distributed.run`` processes (a few seconds each); the single-process reference runs
in this process on one thread, as each torchrun worker does (OMP_NUM_THREADS=1)."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import robustgen
from robustgen.distributed import batch_seed, gather_batches, my_batches, world

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}  # same arithmetic in 1 and 2 processes


def _run(args: list[str], procs: int, cwd: Path, monkeypatch) -> None:
    if procs == 1:  # in this process, on one thread like each worker: the same arithmetic, without a start-up
        from robustgen.cli import main

        threads = torch.get_num_threads()
        monkeypatch.chdir(cwd)
        monkeypatch.syspath_prepend(str(cwd))
        torch.set_num_threads(1)
        try:
            assert main(args) == 0
        finally:
            torch.set_num_threads(threads)
        return
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}"]
    done = subprocess.run([*launcher, "-m", "robustgen", *args], cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def _rows(path: Path, drop: tuple[str, ...] = ()) -> list[dict]:
    with open(path) as f:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(f)]


def test_helpers_outside_torchrun_are_the_identity():
    assert world() == (0, 1)
    assert my_batches(10, 4) == [0, 4, 8]
    parts = {0: torch.zeros(4), 4: torch.ones(4), 8: torch.full((2,), 2.0)}
    assert torch.equal(gather_batches(parts, 10, 4), torch.cat([parts[0], parts[4], parts[8]]))
    assert batch_seed(0, 4) != batch_seed(0, 8) and batch_seed(1, 4) != batch_seed(0, 4)


def test_attack_results_do_not_depend_on_what_ran_before(mnist_small):
    from robustgen.attacks import make_attack, run_attack

    model = robustgen.load_model("fast-mnist")
    (x, y), _ = mnist_small
    x, y = x[:40], y[:40]
    attack = make_attack("pgd", model, 0.1, steps=3)
    a = run_attack(attack, x, y, batch_size=16, seed=5)
    torch.rand(1000)  # disturb the global generator
    b = run_attack(attack, x, y, batch_size=16, seed=5)
    assert torch.equal(a, b)
    # the random start of each batch depends on its position, not on the batches before it
    c = run_attack(attack, x[16:], y[16:], batch_size=16, seed=5)
    assert not torch.equal(a[16:32], c[:16])  # batch 16..31 became batch 0: another seed
    d = run_attack(attack, x[:32], y[:32], batch_size=16, seed=5)
    assert torch.equal(a[:32], d)


PLAIN = """
import torch
import robustgen


class Plain(torch.nn.Module):  # fast-mnist's classifier as a module robustgen does not know
    def __init__(self):
        super().__init__()
        self.net = robustgen.load_model("fast-mnist")

    def forward(self, x):
        return self.net(x)


def build():
    return Plain().eval()
"""


@pytest.mark.parametrize("model", [["--checkpoint", "fast-mnist", "--full", "--score", "recon,confidence",
                                    "--sanity-n", "0", "--eps", "0.3"],
                                   ["--model", "plainnet:build", "--dataset", "mnist", "--score", "confidence,energy"]],
                         ids=["native-full", "foreign-cascade"])
def test_sharded_attack_report_equals_the_single_process_one(tmp_path, model, monkeypatch):
    (tmp_path / "plainnet.py").write_text(PLAIN)
    eps = [] if "--eps" in model else ["--eps", "0.1,0.3"]
    args = ["attack", *model, *eps, "--n-val", "300", "--method", "pgd,adaptive-pgd", "-n", "40",
            "--batch-size", "16", "--steps", "3", "--step-size", "0.1", "--search-steps", "2", "--quiet",
            *([] if "--sanity-n" in model else ["--sanity-n", "10"])]
    _run([*args, "--out", str(tmp_path / "one")], 1, tmp_path, monkeypatch)
    _run([*args, "--out", str(tmp_path / "two")], 2, tmp_path, monkeypatch)
    for name in ("detection.csv", "per_input.csv", "worst_case.csv", "misclassification.csv", "sanity.csv"):
        one = _rows(tmp_path / "one" / name, drop=("attack_seconds",))
        two = _rows(tmp_path / "two" / name, drop=("attack_seconds",))
        assert one == two, name
    assert len(_rows(tmp_path / "one" / "per_input.csv")) == 40 * (2 if eps else 1)  # one row per input and eps
    # not trivially equal: the attacks broke inputs, with random starts that differ from batch to batch
    assert any(float(r["robust_acc"]) < 0.5 for r in _rows(tmp_path / "one" / "detection.csv") if r["eps"] == "0.3")
    if "--full" not in model:  # the cascade left adaptive-pgd only the inputs PGD had not broken, in both runs
        assert any(int(r["inputs_attacked"]) < 40 for r in _rows(tmp_path / "one" / "detection.csv"))


def test_ddp_training_matches_single_process_training(tmp_path, monkeypatch):
    args = ["train", "--config", "smoke", "--epochs", "1", "--set", "data.limit_train=1024", "--set", "train.noise_std=0",
            "--set", "data.val_size=500", "--set", "train.precision=float32", "--quiet"]  # float32 on any CPU: the
    # processes are new, and bfloat16's rounding of half batches would exceed the tolerance below
    _run([*args, "--runs-dir", str(tmp_path / "one")], 1, tmp_path, monkeypatch)
    _run([*args, "--runs-dir", str(tmp_path / "two")], 2, tmp_path, monkeypatch)
    (one,), (two,) = (tmp_path / "one").iterdir(), (tmp_path / "two").iterdir()
    a, b = robustgen.load_checkpoint(one), robustgen.load_checkpoint(two)
    torch.manual_seed(0)
    from robustgen.training.train import build_model

    init = build_model(robustgen.load_config("smoke"), 10).state_dict()
    for k, w in a["model_state"].items():
        if w.is_floating_point() and w.numel() > 1:
            moved = (w - init[k]).norm()
            assert (w - b["model_state"][k]).norm() <= 1e-3 * moved + 1e-7, k
    # the logged loss is averaged over the processes: the whole batch's, as in one process
    ce_one, ce_two = float(_rows(one / "metrics.csv")[0]["ce"]), float(_rows(two / "metrics.csv")[0]["ce"])
    assert ce_two == pytest.approx(ce_one, rel=1e-4)


def test_batch_size_not_divisible_by_processes_is_refused(tmp_path, monkeypatch, capsys):
    from robustgen.cli import main
    from robustgen.training import train

    monkeypatch.setattr(train, "world", lambda: (0, 2))  # rank 0 of two processes, as under torchrun
    code = main(["train", "--config", "smoke", "--epochs", "1", "--batch-size", "127",
                 "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    assert code != 0
    assert "must be divisible by the number of processes" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # refused before any run folder was made
