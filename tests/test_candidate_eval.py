"""benchmarks/candidate_eval.sh, run with stand-ins for robustgen and python that log their arguments and
write the output they are asked for: the steps, their order, their folders and the skipping of finished ones."""

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "candidate_eval.sh"

STAND_IN = r"""#!/usr/bin/env bash
# log the call; make the file the step's skip test looks for
echo "$(basename "$0") $*" >> "$LOG"
if [ "$1" = -c ]; then exec "$REAL_PYTHON" "$@"; fi
sub=$1 out="" name="" json=""
while [ $# -gt 0 ]; do
    case $1 in --out) out=$2; shift ;; --name) name=$2; shift ;; --json) json=$2; shift ;; esac
    shift
done
if [ -n "$json" ]; then touch "$json"; exit 0; fi
mkdir -p "$out"
case $sub in
    export) touch "$out/$name.json" ;;
    eval) touch "$out/eval-test.json" ;;
    *) touch "$out/detection.md" ;;
esac
"""


@pytest.fixture
def tree(tmp_path):
    """A copy of the script in a repository of its own (it writes under its parent folder's reports/)."""
    (tmp_path / "benchmarks").mkdir()
    shutil.copy(SCRIPT, tmp_path / "benchmarks" / SCRIPT.name)
    for tool in ("robustgen", "python"):
        path = tmp_path / "bin" / tool
        path.parent.mkdir(exist_ok=True)
        path.write_text(STAND_IN)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.toml").write_text("[train]\nepochs = 1\n")
    return tmp_path


def _run(tree, *args, **env):
    log = tree / "log.txt"
    log.unlink(missing_ok=True)
    env = {**os.environ, "ROBUSTGEN": str(tree / "bin" / "robustgen"), "PYTHON": str(tree / "bin" / "python"),
           "REAL_PYTHON": sys.executable, "LOG": str(log), **env}
    done = subprocess.run(["bash", str(tree / "benchmarks" / SCRIPT.name), *args], env=env, capture_output=True,
                          text=True)
    calls = log.read_text().splitlines() if log.exists() else []
    return done, [c for c in calls if not c.startswith("python -c")]


def test_the_steps_run_in_order_and_a_finished_one_is_skipped(tree):
    done, calls = _run(tree, str(tree / "run"), "cand", "0.1", str(tree / "export"))
    assert done.returncode == 0, done.stderr
    assert [c.split()[1] for c in calls] == ["export", "eval", "attack", "attack", "attack",
                                              f"{tree}/benchmarks/union_worst_case.py"]
    out = tree / "reports" / "cand"
    assert "--precision bfloat16" in calls[2] and f"--out {out}/attack-autoattack-bf16-eps0.1-n1000" in calls[2]
    assert "--precision bfloat16" in calls[3] and f"--out {out}/attack-strong-bf16-confidence-eps0.1-n1000" in calls[3]
    assert "--precision" not in calls[4] and f"--out {out}/attack-autoattack-eps0.1-n1000" in calls[4]
    assert (tree / "reports" / "benchmarks" / "union_worst_case_cand.json").exists()
    assert len((out / "timings.txt").read_text().splitlines()) == 6
    done, calls = _run(tree, str(tree / "run"), "cand", "0.1", str(tree / "export"))
    assert done.returncode == 0 and calls == [] and done.stdout.count("skip ") == 6  # nothing run twice


def test_strong_precision_float32_runs_the_strong_set_in_float32_into_its_own_folder(tree):
    done, calls = _run(tree, str(tree / "run"), "cand", "0.1", str(tree / "export"), STRONG_PRECISION="float32")
    assert done.returncode == 0, done.stderr
    strong = [c for c in calls if "--full" in c]
    assert len(strong) == 1 and "--precision float32" in strong[0]
    assert f"--out {tree}/reports/cand/attack-strong-confidence-eps0.1-n1000" in strong[0]


def test_screen_no_skips_the_bfloat16_autoattack_and_runs_the_rest(tree):
    done, calls = _run(tree, str(tree / "run"), "cand", "0.1", str(tree / "export"), SCREEN="no")
    assert done.returncode == 0, done.stderr
    assert [c.split()[1] for c in calls] == ["export", "eval", "attack", "attack",
                                              f"{tree}/benchmarks/union_worst_case.py"]
    assert "--full" in calls[2] and "--precision" not in calls[3] and "-bf16" not in calls[3]
    assert not (tree / "reports" / "cand" / "attack-autoattack-bf16-eps0.1-n1000").exists()


@pytest.mark.parametrize("args, env, message", [
    (("RUN", "cand", "0.1a"), {}, "EPS is not a number: 0.1a"),
    (("nowhere", "cand", "0.1"), {}, "no run nowhere"),
    (("RUN", "cand", "0.1"), {"STRONG_PRECISION": "float16"}, "STRONG_PRECISION is not bfloat16 or float32: float16"),
    (("RUN", "cand", "0.1"), {"SCREEN": "off"}, "SCREEN is not yes or no: off"),
])
def test_a_bad_argument_is_one_line_and_runs_nothing(tree, args, env, message):
    args = [str(tree / "run") if a == "RUN" else a for a in args]
    done, calls = _run(tree, *args, **env)
    assert done.returncode == 2 and done.stderr.strip() == f"candidate_eval.sh: {message}" and calls == []
