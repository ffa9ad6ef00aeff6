"""Resumable evaluations: ``robustgen attack --resume DIR`` after a crash ends with the report an
uninterrupted run writes, without running again what was finished."""

import json

import pandas as pd
import pytest

import robustgen.evaluation.outcomes as outcomes
from robustgen.cli import main

ARGS = ["attack", "--checkpoint", "robust-mnist", "--n-val", "300", "--method", "pgd,square,adaptive-pgd",
        "--eps", "0.2,0.3", "--n", "24", "--score", "confidence,recon", "--steps", "3", "--queries", "20",
        "--search-steps", "1", "--sanity-n", "6", "--batch-size", "10", "--quiet"]
TABLES = ["detection.csv", "worst_case.csv", "per_input.csv", "sanity.csv", "misclassification.csv",
          "security_curve.csv", "roc.csv"]


def _tables(folder):
    out = {}
    for name in TABLES:
        table = pd.read_csv(folder / name)
        out[name] = table.drop(columns=[c for c in table.columns if c == "attack_seconds"])
    return out


class Killed(BaseException):  # not an Exception: nothing on the way may catch it, as with SIGKILL
    pass


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("attack") / "full"
    assert main(ARGS + ["--out", str(out)]) == 0
    return out


def test_a_run_killed_after_its_third_attack_resumes_to_the_same_report(tmp_path, monkeypatch, uninterrupted, capsys):
    real, calls = outcomes.attack_outcome, []

    def dies_at_the_fourth(*args, **kwargs):
        if len(calls) == 3:
            raise Killed
        calls.append((args[2], args[3], kwargs["target"]))
        return real(*args, **kwargs)

    out = tmp_path / "cut"
    monkeypatch.setattr("robustgen.evaluation.benchmark.attack_outcome", dies_at_the_fourth)
    with pytest.raises(Killed):
        main(ARGS + ["--out", str(out), "--seed", "0"])
    kept = sorted(p.name for p in (out / "outcomes").iterdir() if p.suffix == ".pt")
    assert len(kept) == 3 and not (out / "detection.csv").exists()
    assert json.loads((out / "run.json").read_text())["options"]["n"] == 24

    ran = []
    monkeypatch.setattr("robustgen.evaluation.benchmark.attack_outcome", lambda *a, **k: ran.append(a[2:4]) or real(*a, **k))
    capsys.readouterr()
    assert main(["attack", "--resume", str(out), "--quiet"]) == 0
    assert len(ran) == 8 - 3  # pgd and square at 2 eps, adaptive-pgd at 2 eps per score: 8, less the 3 done
    assert tuple(calls[0][:2]) not in ran  # the first finished attack was not run again
    for name, table in _tables(uninterrupted).items():
        pd.testing.assert_frame_equal(_tables(out)[name], table, obj=name)
    meta = json.loads((out / "benchmark.json").read_text())
    assert meta["resumed_attacks"] == 3 and meta["model_sha256"] == json.loads(
        (uninterrupted / "benchmark.json").read_text())["model_sha256"]
    assert not (out / "outcomes").exists() and not (out / "run.json").exists()  # the report holds what they held
    assert main(["attack", "--resume", str(out)]) == 2 and "has finished" in capsys.readouterr().err


def test_resume_refuses_new_options_other_data_and_a_damaged_outcome(tmp_path, monkeypatch, capsys):
    real = outcomes.attack_outcome
    calls = []

    def dies_at_the_third(*args, **kwargs):
        if len(calls) == 2:
            raise Killed
        calls.append(1)
        return real(*args, **kwargs)

    out = tmp_path / "cut"
    monkeypatch.setattr("robustgen.evaluation.benchmark.attack_outcome", dies_at_the_third)
    with pytest.raises(Killed):
        main(ARGS + ["--out", str(out)])
    monkeypatch.setattr("robustgen.evaluation.benchmark.attack_outcome", real)
    assert main(["attack", "--resume", str(out), "--eps", "0.1"]) == 2
    assert "--eps cannot change a run being resumed" in capsys.readouterr().err
    original = (out / "run.json").read_text()
    record = json.loads(original)
    record["options"]["eps"] = "0.1"  # edited by hand: the record's own digest no longer matches
    (out / "run.json").write_text(json.dumps(record))
    assert main(["attack", "--resume", str(out), "--quiet"]) == 2
    assert "run.json: SHA-256 does not match" in capsys.readouterr().err
    (out / "run.json").write_text(original)
    kept_digests = out / "outcomes" / "digests.json"
    true_digests = kept_digests.read_text()
    other = json.loads(true_digests)
    other["data_sha256"] = "0" * 64  # outcomes kept of other data than this run draws
    kept_digests.write_text(json.dumps(other))
    assert main(["attack", "--resume", str(out), "--quiet"]) == 2
    assert "data differs from the one the interrupted run" in capsys.readouterr().err
    kept_digests.write_text(true_digests)
    (kept,) = [p for p in (out / "outcomes").iterdir() if "pgd" in p.name and p.suffix == ".pt"][:1]
    data = bytearray(kept.read_bytes())
    data[len(data) // 2] ^= 0x01
    kept.write_bytes(bytes(data))
    assert main(["attack", "--resume", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and kept.name in err[0] and "SHA-256" in err[0]
    assert main(["attack", "--resume", str(tmp_path)]) == 2 and "holds no run.json" in capsys.readouterr().err


def test_a_record_made_before_an_option_existed_resumes_with_its_default(tmp_path):
    from robustgen.cli import build_parser
    from robustgen.cli.resume import FIXED, RECORD, _digest, apply_record

    args = build_parser().parse_args(["attack"])
    defaults = {k: getattr(args, k) for k in FIXED}
    options = {**defaults, "method": "pgd", "eps": "0.3"}
    del options["precision"]  # written before --precision was an option
    record = {"options": options, "digests": {}}
    (tmp_path / RECORD).write_text(json.dumps({**record, "sha256": _digest(record)}))
    args.resume = str(tmp_path)
    apply_record(args, defaults)
    assert (args.method, args.eps, args.precision) == ("pgd", "0.3", "float32")
