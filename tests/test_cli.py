import json

import pytest

from robustgen.cli import main


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    """A runs folder holding one smoke-preset run (1 epoch on 2,048 images) made by the CLI."""
    runs = tmp_path_factory.mktemp("cli") / "runs"
    assert main(["train", "--config", "smoke", "--runs-dir", str(runs), "--quiet",
                 "--set", "data.limit_train=2048", "--epochs", "1"]) == 0
    return runs


def test_train_then_eval_smoke(smoke_runs, capsys):
    runs = smoke_runs
    assert main(["train", "--config", "smoke", "--runs-dir", str(runs), "--quiet", "--name", "second",
                 "--set", "data.limit_train=1024", "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    first, run = sorted(runs.iterdir(), key=lambda p: p.name.endswith("second"))
    assert f"run folder: {run}" in out and "validation accuracy" in out
    assert (run / "metrics.csv").read_text().count("\n") == 2  # header + one epoch
    assert "epochs = 1" in (run / "config.toml").read_text()

    assert main(["eval", "--runs-dir", str(runs)]) == 0  # newest run by default
    assert (run / "eval-test.json").is_file() and not (first / "eval-test.json").exists()
    out = capsys.readouterr().out
    result = json.loads((run / "eval-test.json").read_text())
    assert result["n"] == 10000 and 0.2 < result["accuracy"] <= 1.0  # one epoch on 1,024 images: 34 %, chance 10 %
    assert f"| accuracy | {result['accuracy']:.4f} |" in out
    assert result["recon_true"] > 0 and result["recon_pred_softmax"] > 0
    from robustgen import load_model
    from robustgen.integrity import sha256_state

    assert result["model_sha256"] == sha256_state(load_model(run)) and len(result["data_sha256"]) == 64


def test_cli_errors_are_sentences(tmp_path, capsys):
    assert main(["eval", "--runs-dir", str(tmp_path)]) == 2
    assert "no trained run found" in capsys.readouterr().err
    assert main(["train", "--config", "nope"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err
    assert main(["train", "--config", "smoke", "--set", "train.epochs=x"]) == 2
    assert "train.epochs must be of type int" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path), "--lr", "0.1"]) == 2
    assert "cannot change a run being resumed" in capsys.readouterr().err
    assert main(["attack-everything"]) == 2
    assert "invalid choice: 'attack-everything'" in capsys.readouterr().err


REQUIRED_COLUMNS = ["method", "eps", "score", "n", "clean_acc", "robust_acc", "success_rate", "auroc",
                    "auroc_successful", "tpr_at_fpr_1", "tpr_at_fpr_5", "tpr_at_fpr_10", "fpr_test",
                    "undetected_success_rate", "err_clean_pred", "err_adv_pred", "err_adv_true"]


def test_attack_writes_the_report(smoke_runs, tmp_path, capsys):
    import pandas as pd

    run = sorted(smoke_runs.iterdir())[0]
    out = tmp_path / "report"
    args = ["attack", "--checkpoint", str(run), "--n-val", "1000", "--method", "pgd,adaptive-pgd", "--eps", "0.1,8/255", "--n", "40",
            "--score", "recon,confidence,joint", "--steps", "3", "--search-steps", "1", "--out", str(out), "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    for name in ("detection.csv", "detection.md", "roc.csv", "roc.png", "misclassification.csv", "benchmark.json",
                 "worst_case.csv", "per_input.csv", "sanity.csv"):
        assert (out / name).is_file(), name
    table = pd.read_csv(out / "detection.csv")
    assert set(REQUIRED_COLUMNS) <= set(table.columns)
    # pgd: one attack shared by 3 scores; adaptive: one attack per score; each at 2 eps
    assert len(table) == 2 * 3 + 2 * 3
    assert set(table["attack_kind"]) == {"oblivious", "adaptive"}
    assert (table["n"] == 40).all() and (table["robust_acc"] <= table["clean_acc"]).all()
    assert table["auroc"].between(0, 1).all() and (table["undetected_success_rate"] <= 1 - table["robust_acc"]).all()
    assert sorted(table["eps"].unique()) == pytest.approx([8 / 255, 0.1], rel=1e-5)  # CSV keeps 6 digits
    roc = pd.read_csv(out / "roc.csv")
    assert {"fpr", "tpr", "threshold"} <= set(roc.columns) and roc["tpr"].between(0, 1).all()
    # the terminal gets a compact summary; the full table is in detection.md
    assert "| method | eps | score | robust_acc | auroc_successful | tpr_at_fpr | undetected_success_rate |" in printed
    assert "err_adv_true" not in printed and f"report written to {out}" in printed
    assert "## Per-input worst case" in (out / "detection.md").read_text()
    sanity = pd.read_csv(out / "sanity.csv")
    assert {"monotone-eps", "eps-1", "black-box-weaker", "double-steps"} <= set(sanity["check"])
    assert json.loads((out / "benchmark.json").read_text())["n_val"] == 1000  # --n-val: thresholds on 1,000 images
    budget = json.loads((out / "benchmark.json").read_text())["budget"]
    assert budget["pgd"] == "3 steps of 0.01, random start" and "2 rounds" in budget["adaptive-pgd"]
    # the report is never overwritten
    assert main(args) == 2
    assert "not empty" in capsys.readouterr().err


def test_attack_on_a_shipped_model_with_the_strong_attacks(tmp_path, capsys, monkeypatch):
    """The newcomer's path: attack the shipped robust model with no training; the per-input worst
    case in worst_case.csv is the union of the attacks' per-input outcomes in per_input.csv."""
    import pandas as pd

    monkeypatch.chdir(tmp_path)
    args = ["attack", "--checkpoint", "robust-mnist", "--n-val", "500", "--method", "pgd,square,selective-pgd,guarded-apgd",
            "--eps", "0.3", "--n", "30", "--score", "recon,joint", "--steps", "5", "--queries", "50",
            "--targets", "untargeted", "--sanity-n", "10", "--quiet"]
    assert main(args) == 0
    (out,) = (tmp_path / "runs" / "pretrained" / "robust-mnist" / "attacks").iterdir()  # not inside the package
    worst = pd.read_csv(out / "worst_case.csv")
    assert list(worst.columns) == ["eps", "score", "n", "undetected_success_rate", "ci_low", "ci_high", "eps0_floor",
                                   "oblivious_rate", "adaptive_rate", "attacks"]
    per_input = pd.read_csv(out / "per_input.csv")
    assert len(per_input) == 30 and per_input["index"].tolist() == list(range(30))
    for _, w in worst.iterrows():
        cols = [c for c in per_input.columns if c.endswith(f":{w['score']}")]
        assert len(cols) == 4  # pgd, square, selective-pgd, guarded-apgd
        assert w["undetected_success_rate"] == pytest.approx(per_input[cols].max(axis=1).mean())
        assert w["ci_low"] <= w["undetected_success_rate"] <= w["ci_high"]
    table = pd.read_csv(out / "detection.csv")
    assert set(table["method"]) == {"pgd", "square", "selective-pgd", "guarded-apgd"}


def test_attack_rejects_bad_arguments(tmp_path, capsys):
    assert main(["attack", "--runs-dir", str(tmp_path), "--method", "cw"]) == 2
    assert "unknown attack 'cw'" in capsys.readouterr().err
    assert main(["attack", "--runs-dir", str(tmp_path), "--eps", "2"]) == 2
    assert "eps must lie in (0, 1]" in capsys.readouterr().err
    assert main(["attack", "--runs-dir", str(tmp_path), "--score", "magic"]) == 2
    assert "unknown detector score 'magic'" in capsys.readouterr().err
    assert main(["attack", "--checkpoint", "robust-mnist", "--steps", "0"]) == 2
    assert "argument --steps: must be at least 1" in capsys.readouterr().err
    assert main(["attack", "--checkpoint", "no-such-model"]) == 2
    from robustgen.pretrained import list_pretrained

    assert f"neither a shipped model ({', '.join(list_pretrained())})" in capsys.readouterr().err
    assert "robust-fashion-conv4" in list_pretrained()


def test_reproduce_writes_figures_and_report(smoke_runs, tmp_path, capsys):
    import json

    run = sorted(smoke_runs.iterdir())[0]
    out = tmp_path / "repro"
    assert main(["reproduce", "--checkpoint", str(run), "--out", str(out), "--n-queries", "100"]) == 0
    printed = capsys.readouterr().out
    for name in ("reconstruction.png", "misclassified.png", "neighbours.png", "interpolation.png",
                 "style_transfer.png", "reproduce.md", "numbers.json", "neighbour_counts.csv"):
        assert (out / name).is_file(), name
    numbers = json.loads((out / "numbers.json").read_text())
    assert len(numbers["meta"]["model_sha256"]) == 64 and len(numbers["meta"]["data_sha256"]) == 64
    md = (out / "reproduce.md").read_text()
    assert md in printed
    assert f"{100 * numbers['accuracy']:.2f} %" in md and "98.48 %" in md  # ours next to the paper's
    assert numbers["neighbours"]["n_queries"] == 100
    assert "## What the style memory holds" in md and 0.0 <= numbers["style"]["probe_accuracy"] <= 1.0
    assert numbers["style"]["n_probe_fit"] == 5000 and numbers["style"]["probe_chance"] == 0.1
    assert sum(numbers["neighbours"]["single"]["style"]["class_counts"]) == 97
    assert main(["reproduce", "--checkpoint", str(run), "--out", str(out)]) == 2  # never overwritten
    assert main(["reproduce", "--checkpoint", str(run), "--experiments", "dreams", "--out", str(tmp_path / "x")]) == 2


def test_emnist_letters_end_to_end_uses_letter_names(tmp_path, capsys):
    """Train on synthetic EMNIST-letters files (learnable: one bright bar position per letter),
    then reproduce: the report and counts are labelled a..z."""
    import numpy as np
    from conftest import write_idx

    rng = np.random.RandomState(0)

    def make(n):
        labels = np.arange(n) % 26
        images = (rng.rand(n, 28, 28) * 60).astype(np.uint8)
        for i, c in enumerate(labels):
            r = 1 + c  # upright row of the bar encodes the letter
            images[i, r, 4:24] = 255
        return images.transpose(0, 2, 1), labels + 1  # stored transposed, labels 1..26

    data = tmp_path / "emnist"
    data.mkdir()
    for part, n in (("train", 2600), ("test", 520)):
        images, labels = make(n)
        write_idx(data / f"emnist-letters-{part}-images-idx3-ubyte", images)
        write_idx(data / f"emnist-letters-{part}-labels-idx1-ubyte", labels)
    runs = tmp_path / "runs"
    assert main(["train", "--config", "smoke", "--dataset", "emnist-letters", "--data-dir", str(data), "--quiet",
                 "--runs-dir", str(runs), "--epochs", "3", "--set", "data.val_size=520", "--set", "data.limit_train=none"]) == 0
    capsys.readouterr()
    out = tmp_path / "repro"
    assert main(["reproduce", "--runs-dir", str(runs), "--data-dir", str(data), "--out", str(out), "--n-queries", "50"]) == 0
    md = (out / "reproduce.md").read_text()
    assert "| space | a | b | c |" in md and "91.27 %" in md  # letter names; the paper's EMNIST accuracy
    counts = (out / "neighbour_counts.csv").read_text()
    assert "image,z," in counts


def test_eps_range_security_curve_compare_and_read_report(smoke_runs, tmp_path, capsys):
    import pandas as pd

    import robustgen

    run = sorted(smoke_runs.iterdir())[0]
    outs = []
    for name, method in (("a", "pgd"), ("b", "fgsm")):
        outs.append(tmp_path / name / "report")
        assert main(["attack", "--checkpoint", str(run), "--n-val", "1000", "--method", method, "--eps", "0:0.2:0.1", "--n", "30",
                     "--score", "recon,confidence", "--steps", "3", "--sanity-n", "5", "--out", str(outs[-1]),
                     "--quiet"]) == 0
    report = robustgen.read_report(outs[0])
    assert set(report) >= {"detection", "worst_case", "per_input", "sanity", "security_curve", "meta"}
    (outs[0] / "roc.csv").unlink()  # as committed reports drop it (.gitignore): still a whole report
    assert "roc" not in robustgen.read_report(outs[0])
    assert sorted(report["detection"]["eps"].unique()) == pytest.approx([0.1, 0.2])  # eps 0 is the clean point
    curve = report["security_curve"]
    assert sorted(curve["eps"].unique()) == pytest.approx([0.0, 0.1, 0.2])
    clean = curve[curve["eps"] == 0].set_index("score")
    floors = report["worst_case"].groupby("score")["eps0_floor"].first()
    assert (clean["undetected_success_rate"] == floors.reindex(clean.index)).all()  # the curve starts at the floor
    assert (floors > 0).any()  # the smoke model misclassifies unflagged clean inputs: the check has teeth
    assert clean["robust_acc"].tolist() == pytest.approx([report["detection"]["clean_acc"].iloc[0]] * 2)
    assert (outs[0] / "security_curve.png").is_file()
    capsys.readouterr()

    cmp = tmp_path / "cmp"
    assert main(["compare", str(outs[0]), str(outs[1]), "--out", str(cmp)]) == 0
    table = pd.read_csv(cmp / "compare.csv")
    assert len(table) == 2 * 2  # eps x score
    for label, out in (("a/report", outs[0]), ("b/report", outs[1])):
        worst = pd.read_csv(out / "worst_case.csv")
        merged = table.merge(worst, on=["eps", "score"])
        assert (merged[f"{label}: undetected_success"] == merged["undetected_success_rate"]).all()
    assert (cmp / "compare.png").is_file() and "a/report: robust_acc" in capsys.readouterr().out
    pivot = (cmp / "compare.md").read_text(encoding="utf-8").split("## One row per report and eps")[1]
    worst = pd.read_csv(outs[0] / "worst_case.csv").iloc[0]
    line = next(t for t in pivot.splitlines() if t.startswith("| a/report | " + f"{worst['eps']:.4f}"))
    assert f"→ {100 * worst['undetected_success_rate']:.1f} %" in line
    assert main(["compare", str(tmp_path), "--out", str(tmp_path / "cmp2")]) == 2
    assert "not a robustgen attack report" in capsys.readouterr().err
