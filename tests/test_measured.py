"""robustgen/pretrained/measured.csv: the figures under attack `robustgen models` prints, each what
robustgen.evaluation.measured computes from the committed report it names, on the shipped weights."""

import csv
import json
import math
import shutil
from pathlib import Path

import pytest

import robustgen
from robustgen.evaluation.measured import autoattack_figure, measured_row, record
from robustgen.integrity import sha256_state
from robustgen.pretrained import RECOMMENDED, measured, pretrained_dir

ROOT = Path(__file__).resolve().parents[1]
ROWS = list(csv.DictReader((Path(str(pretrained_dir())) / "measured.csv").open(newline="")))
FEMA = "reports/robust-fashion-conv4-ema/attack-autoattack-eps0.1-n1000"


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r["model"])
def test_each_recorded_figure_is_what_its_reports_give(row):
    mine = measured_row(row["model"], row["autoattack_report"], row["worst_case_report"], row["score"], root=ROOT)
    got = measured(row["model"])
    for key, value in mine.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, nan_ok=True), key
        else:
            assert got[key] == (value or ""), key


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r["model"])
def test_each_recorded_figure_measured_the_shipped_weights(row):
    if row["model_sha256"]:
        assert row["model_sha256"] == sha256_state(robustgen.load_model(row["model"]))
    else:  # reports written before they kept the digest name the model they loaded
        for folder in {row["autoattack_report"], row["worst_case_report"]}:
            meta = json.loads((ROOT / folder / "benchmark.json").read_text())
            assert meta["checkpoint"] == f"pretrained:{row['model']}", folder


def test_every_recommended_model_has_its_figures():
    for name in RECOMMENDED.values():
        m = measured(name)
        assert m is not None and 0 < m["autoattack_accuracy"] < 1 and m["worst_case_n"] >= 1000, name
    assert measured("mnist-ae") is None  # an autoencoder is not attacked as a classifier


def test_the_models_command_prints_them(capsys):
    from robustgen.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    m = measured(RECOMMENDED["mnist"])
    assert f"| {100 * m['autoattack_accuracy']:.1f} % at eps {m['autoattack_eps']:g} | {100 * m['worst_case']:.1f} % " in out
    assert "| recon 2.688 | - | - |" in out
    from robustgen.cli.models import _worst_case

    assert _worst_case({**m, "worst_case_precision": "mixed"}).endswith(", mixed attacks; floor 0.0 %)")
    assert _worst_case({**m, "eps0_floor": float("nan")}).endswith("; floor -)")
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["robust-fashion"]["measured"]["autoattack_n"] == 500 and rows["mnist-ae"]["measured"] is None


def _copy(folder, tmp_path, **meta):
    out = tmp_path / Path(folder).name
    shutil.copytree(ROOT / folder, out)
    (out / "checksums.sha256").unlink()  # read as a report written before checksums
    data = json.loads((out / "benchmark.json").read_text())
    (out / "benchmark.json").write_text(json.dumps({**data, **meta}))
    return out


def test_autoattack_behind_other_attacks_in_a_cascade_is_refused(tmp_path):
    assert autoattack_figure(_copy(FEMA, tmp_path, cascade=True, order=["autoattack"]))["autoattack_accuracy"] == 0.765
    with pytest.raises(ValueError, match="ran after other attacks in a cascade"):
        autoattack_figure(_copy(FEMA, tmp_path / "b", cascade=True, order=["pgd", "autoattack"]))
    with pytest.raises(ValueError, match="no AutoAttack row"):
        autoattack_figure(ROOT / "reports/robust-fashion-conv4-ema/attack-strong-bf16-confidence-eps0.1-n1000")


def test_figures_of_two_different_weights_are_refused():
    with pytest.raises(ValueError, match="measured different weights"):
        measured_row("x", FEMA, "reports/benchmarks/union_worst_case_robust-fashion-conv4_bf16.json", root=ROOT)


def test_record_refuses_a_recorded_model_unless_replaced(tmp_path):
    path = tmp_path / "measured.csv"
    row = measured_row("robust-fashion-conv4-ema", FEMA, FEMA, root=ROOT)
    record(row, path)
    with pytest.raises(ValueError, match="already in"):
        record({**row, "autoattack_accuracy": 0.5}, path)
    assert next(csv.DictReader(path.open()))["autoattack_accuracy"] == "0.765"  # left as it was
    record({**row, "model": "a-model"}, path)
    record({**row, "autoattack_accuracy": 0.5}, path, replace=True)
    rows = list(csv.DictReader(path.open()))
    assert [r["model"] for r in rows] == ["a-model", "robust-fashion-conv4-ema"] and rows[1]["autoattack_accuracy"] == "0.5"
    assert not math.isnan(float(rows[0]["eps0_floor"])) and not list(tmp_path.glob("*.tmp"))
