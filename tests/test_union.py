"""robustgen.evaluation.union: the worst case joined over several reports of the same inputs, on the
committed reports (every committed union JSON must be what the code computes from the reports it names)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from robustgen.evaluation.union import union_worst_case

ROOT = Path(__file__).resolve().parents[1]
FASHION = ROOT / "reports" / "robust-fashion-conv4-ema"
AA, STRONG = FASHION / "attack-autoattack-eps0.1-n1000", FASHION / "attack-strong-bf16-confidence-eps0.1-n1000"


@pytest.mark.parametrize("path", sorted((ROOT / "reports" / "benchmarks").glob("union_worst_case_*.json")),
                         ids=lambda p: p.stem)
def test_each_committed_union_is_what_its_reports_give(path):
    joined = json.loads(path.read_text())
    assert all(not Path(r).is_absolute() for r in joined["reports"]), joined["reports"]  # a clean checkout has them
    rows = union_worst_case([ROOT / r for r in joined["reports"]], first=joined.get("first"))
    assert len(rows) == len(joined["rows"])
    for mine, theirs in zip(rows, joined["rows"]):
        assert (mine["eps"], mine["score"], mine["n"]) == (theirs["eps"], theirs["score"], theirs["n"])
        assert mine["undetected_success_rate"] == pytest.approx(theirs["undetected_success_rate"])
        assert (mine["ci_low"], mine["ci_high"]) == pytest.approx((theirs["ci_low"], theirs["ci_high"]))


def _broken(folder, first):
    table = pd.read_csv(folder / "per_input.csv").sort_values("index").head(first)
    return table[[c for c in table.columns if c.endswith(":confidence")]].to_numpy().astype(bool).any(axis=1)


def test_an_input_counts_once_when_any_attack_of_any_report_broke_it():
    (row,) = union_worst_case([AA, STRONG])
    aa, strong = _broken(AA, 1000), _broken(STRONG, 1000)
    assert row["n"] == 1000 and row["undetected_success_rate"] == (aa | strong).mean()
    assert row["undetected_success_rate"] > max(aa.mean(), strong.mean())  # each report misses some the other finds
    assert row["attacks"][0] == "autoattack (attack-autoattack-eps0.1-n1000)" and len(row["attacks"]) == 8


def test_first_counts_only_the_first_inputs():
    (row,) = union_worst_case([AA, STRONG], first=500)
    both = _broken(AA, 500) | _broken(STRONG, 500)
    assert row["n"] == 500 and row["undetected_success_rate"] == both.mean()
    assert row["undetected_success_rate"] != union_worst_case([AA, STRONG])[0]["undetected_success_rate"]
    assert union_worst_case([AA, STRONG], first=1000) == union_worst_case([AA, STRONG])


@pytest.mark.parametrize("first", [0, -1, 1001, 2.5, True, float("nan")])
def test_first_outside_the_reports_inputs_is_refused(first):
    with pytest.raises(ValueError, match="first must be a whole number from 1 to the reports' N"):
        union_worst_case([AA, STRONG], first=first)


def test_reports_of_other_weights_are_refused():
    other = ROOT / "reports" / "robust-fashion-conv4" / "attack-autoattack-eps0.1-n1000"
    with pytest.raises(ValueError, match="model_sha256 differs"):
        union_worst_case([AA, other])
    with pytest.raises(ValueError, match="at least one"):
        union_worst_case([])


def test_a_report_with_inputs_missing_is_refused(tmp_path):
    copy = tmp_path / "strong"
    import shutil
    shutil.copytree(STRONG, copy)
    table = pd.read_csv(copy / "per_input.csv")
    table[table["index"] != 7].to_csv(copy / "per_input.csv", index=False)
    (copy / "checksums.sha256").unlink()  # read as a report written before checksums
    with pytest.raises(ValueError, match="does not hold inputs 0..999"):
        union_worst_case([AA, copy])
    assert np.isclose(union_worst_case([AA])[0]["undetected_success_rate"], _broken(AA, 1000).mean())
