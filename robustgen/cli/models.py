"""``robustgen models``: the models shipped inside the package, one line each, from their manifests."""

from __future__ import annotations

import json
from pathlib import Path

HELP = ("list the shipped models: dataset, encoder, training, clean test accuracy, AutoAttack and the detector's "
        "worst case where measured, the recommended one per dataset")


def add_parser(sub) -> None:
    p = sub.add_parser("models", help=HELP, description=HELP + " (figures under attack: README, docs/robustness.md)")
    p.add_argument("--json", action="store_true", help="one JSON object per model instead of the table")
    p.add_argument("--dir", metavar="DIR", help="list the models `robustgen export` wrote into DIR instead")


def run(args) -> int:
    from ..pretrained import describe, exported_name, list_pretrained
    from ..reports.tables import markdown_table

    if args.dir is not None and not Path(args.dir).is_dir():
        raise ValueError(f"--dir {args.dir} is not a folder")
    names = list_pretrained(args.dir)
    if args.dir is not None:  # a user's folder may hold other JSON files: only export manifests name models
        names = [n for n in names if exported_name(Path(args.dir) / f"{n}.json") is not None]
    rows = [describe(name, args.dir) for name in names]
    if not rows and not args.json:
        print(f"no exported models (NAME.json beside NAME.pt) in {args.dir}" if args.dir else "no shipped models")
        return 0
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    table = [{"model": r["name"] + (" (recommended)" if r["recommended"] else ""), "dataset": r["dataset"],
              "encoder": r["encoder"], "training": r["training"], "epochs": r["epochs"],
              "clean test": f"{100 * r['clean_accuracy']:.2f} %" if r["clean_accuracy"] is not None
              else f"recon {r['recon_error']:.3f}",
              "AutoAttack": _autoattack(r["measured"]), "worst case": _worst_case(r["measured"]),
              "sha256": r["sha256"]} for r in rows]
    print(markdown_table(table), end="")
    how = f"{Path(args.dir) / 'NAME.json'}" if args.dir else "NAME"
    print(f"\nload one with robustgen.load_model({how!r}) or pass --checkpoint {how}; the weights' SHA-256 is checked on load")
    return 0


def _autoattack(m: dict | None) -> str:
    return "-" if m is None else f"{100 * m['autoattack_accuracy']:.1f} % at eps {m['autoattack_eps']:g}"


def _worst_case(m: dict | None) -> str:
    """Misclassified and unflagged under the worst attack per input, with the floor clean inputs give."""
    if m is None:
        return "-"
    floor = "-" if m["eps0_floor"] != m["eps0_floor"] else f"{100 * m['eps0_floor']:.1f} %"  # NaN: not recorded
    how = "" if m["worst_case_precision"] == "float32" else f", {m['worst_case_precision']} attacks"  # weaker
    return f"{100 * m['worst_case']:.1f} % ({m['score']}, eps {m['worst_case_eps']:g}{how}; floor {floor})"
