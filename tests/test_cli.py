import json

import pytest

from robustgen.cli import main


def test_train_then_eval_smoke(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["train", "--config", "smoke", "--runs-dir", str(runs), "--quiet",
                 "--set", "data.limit_train=2048", "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    (run,) = runs.iterdir()
    assert f"run folder: {run}" in out
    assert (run / "metrics.csv").read_text().count("\n") == 2  # header + one epoch
    assert "epochs = 1" in (run / "config.toml").read_text()

    assert main(["eval", "--runs-dir", str(runs)]) == 0  # newest run by default
    out = capsys.readouterr().out
    result = json.loads((run / "eval-test.json").read_text())
    assert result["n"] == 10000 and 0.5 < result["accuracy"] <= 1.0
    assert f"| accuracy | {result['accuracy']:.4f} |" in out
    assert result["recon_true"] > 0 and result["recon_pred_softmax"] > 0


def test_cli_errors_are_sentences(tmp_path, capsys):
    assert main(["eval", "--runs-dir", str(tmp_path)]) == 2
    assert "no trained run found" in capsys.readouterr().err
    assert main(["train", "--config", "nope"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err
    assert main(["train", "--config", "smoke", "--set", "train.epochs=x"]) == 2
    assert "train.epochs must be of type int" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path), "--lr", "0.1"]) == 2
    assert "cannot change a run being resumed" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["attack-everything"])
