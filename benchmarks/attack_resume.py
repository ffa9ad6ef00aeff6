"""``robustgen attack`` killed with SIGKILL after its K-th attack, then ``--resume``: is the report the
one an uninterrupted run writes, and does the resumed run take only the time of what was left?

Runs, each in a fresh process: (1) the whole evaluation uninterrupted; (2) the same, killed with
SIGKILL as soon as K attack outcomes are kept in its folder; (3) ``robustgen attack --resume`` on that
folder. Compares every CSV of the two reports (the wall-time column ``attack_seconds`` aside) and the
resumed run's wall time with the uninterrupted run's less the time of the K attacks it did not redo.

    python benchmarks/attack_resume.py --checkpoint robust-mnist -n 200 --eps 0.3 --score confidence \\
        --json reports/benchmarks/attack_resume_cpu.json

Target (issue 31): CSVs equal; resumed time at most the time of the attacks left plus one minute.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

TABLES = ["detection.csv", "worst_case.csv", "per_input.csv", "sanity.csv", "misclassification.csv",
          "security_curve.csv", "roc.csv"]


def timed(cmd: list[str], kill_when=None) -> tuple[float, bool]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killed = False
    while proc.poll() is None:
        if kill_when is not None and kill_when():
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.1)
    proc.wait()
    if not killed and proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()}")
    return time.perf_counter() - start, killed


def label(outcome_file: str) -> str:
    """``attack_pgd_0.3_-.pt`` -> ``pgd eps=0.3`` (the key benchmark.json's attack_seconds uses)."""
    _, method, eps, target = outcome_file[:-3].split("_")
    return f"{method} eps={float(eps):g}" + ("" if target == "-" else f" vs {target}")


def tables(folder: Path) -> dict:
    out = {}
    for name in TABLES:
        t = pd.read_csv(folder / name)
        out[name] = t.drop(columns=[c for c in t.columns if c == "attack_seconds"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default="robust-mnist")
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--eps", default="0.3")
    ap.add_argument("--score", default="confidence")
    ap.add_argument("--method", default="strong")
    ap.add_argument("--kill-after", type=int, default=3, help="kill once this many attacks are finished")
    ap.add_argument("--json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = [sys.executable, "-m", "robustgen", "attack", "--checkpoint", args.checkpoint, "--method", args.method,
                "--eps", args.eps, "--score", args.score, "-n", str(args.n), "--quiet", "--out"]
        full_s, _ = timed(base + [str(tmp / "full")])
        kept = tmp / "cut" / "outcomes"
        cut_s, killed = timed(base + [str(tmp / "cut")],
                              kill_when=lambda: kept.is_dir() and len([p for p in kept.iterdir() if p.suffix == ".pt"])
                              >= args.kill_after)
        done = sorted(p.name for p in kept.iterdir() if p.suffix == ".pt") if kept.is_dir() else []
        resumed_s, _ = timed([sys.executable, "-m", "robustgen", "attack", "--resume", str(tmp / "cut"), "--quiet"])
        a, b = tables(tmp / "full"), tables(tmp / "cut")
        equal = {name: a[name].equals(b[name]) for name in TABLES}
        seconds = json.loads((tmp / "full" / "benchmark.json").read_text())["attack_seconds"]
        meta = json.loads((tmp / "cut" / "benchmark.json").read_text())
    done_s = sum(seconds[label(f)] for f in done if f.startswith("attack_"))
    left = full_s - done_s
    result = {"command": " ".join(base[2:]) + " DIR", "uninterrupted_seconds": full_s, "killed": killed,
              "killed_after_seconds": cut_s, "attacks_done_at_kill": done, "their_seconds_uninterrupted": done_s,
              "resumed_seconds": resumed_s, "time_of_what_was_left": left, "resumed_within_left_plus_60s": resumed_s <= left + 60,
              "resumed_attacks_reused": meta["resumed_attacks"], "csvs_equal": equal, "all_equal": all(equal.values())}
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
