"""``robustgen models``: the models shipped inside the package, one line each, from their manifests."""

from __future__ import annotations

import json

HELP = "list the shipped models: dataset, encoder, training, clean test accuracy, the recommended one per dataset"


def add_parser(sub) -> None:
    p = sub.add_parser("models", help=HELP, description=HELP + " (figures under attack: README, docs/robustness.md)")
    p.add_argument("--json", action="store_true", help="one JSON object per model instead of the table")


def run(args) -> int:
    from ..pretrained import describe, list_pretrained
    from ..reports.tables import markdown_table

    rows = [describe(name) for name in list_pretrained()]
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    table = [{"model": r["name"] + (" (recommended)" if r["recommended"] else ""), "dataset": r["dataset"],
              "encoder": r["encoder"], "training": r["training"], "epochs": r["epochs"],
              "clean test": f"{100 * r['clean_accuracy']:.2f} %" if r["clean_accuracy"] is not None
              else f"recon {r['recon_error']:.3f}",
              "sha256": r["sha256"]} for r in rows]
    print(markdown_table(table), end="")
    print("\nload one with robustgen.load_model(NAME) or pass --checkpoint NAME; the weights' SHA-256 is checked on load")
    return 0
