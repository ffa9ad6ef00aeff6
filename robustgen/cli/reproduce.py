"""``robustgen reproduce``: the paper's experiments on a trained model, figures and a markdown report."""

from __future__ import annotations

from .common import (
    add_model_args,
    at_least,
    load_classifier,
    model_home,
    model_split,
    new_output_folder,
    seed_value,
    split_list,
    timestamped,
)

HELP = "the paper's experiments: figures and a markdown report"


def add_parser(sub) -> None:
    p = sub.add_parser("reproduce", help=HELP)
    add_model_args(p)
    p.add_argument("--experiments", default="all",
                   help="all, or comma-separated: reconstruction, misclassified, neighbours, interpolation, style")
    p.add_argument("--query", type=at_least(0), default=0, help="test image used as the neighbour query (default 0)")
    p.add_argument("--k", type=at_least(1), default=97, help="neighbours per space (paper: 97)")
    p.add_argument("--n-queries", type=at_least(1), default=1000,
                   help="random queries for averaged neighbour statistics (at most the test set's size)")
    p.add_argument("--seed", type=seed_value, default=0)
    p.add_argument("--out", help="output folder (default: <run>/reproduce/<timestamp>); must be new or empty")


def _recipe(cfg: dict) -> str:
    t = cfg["train"]
    return (f"trained {t['epochs']} epochs, Adam lr {t['lr']:g} ({t['lr_schedule']}), alpha {t['alpha']:g}, "
            f"noise {t['noise_std']:g}, shifts {t['shift']} px; paper: 250 epochs at lr 1e-5")


def run(args) -> int:
    from ..evaluation.experiments import EXPERIMENTS, run_experiments
    from ..integrity import sha256_state, sha256_tensors
    from ..reports.reproduce import write_reproduce_report
    from ..runs import resolve_device

    names = list(EXPERIMENTS) if args.experiments == "all" else split_list(args.experiments, "experiments")
    for name in names:
        if name not in EXPERIMENTS:
            raise ValueError(f"unknown experiment {name!r}; use one of {', '.join(EXPERIMENTS)} or 'all'")
    device = resolve_device(args.device)
    model = load_classifier(args, device)
    out = new_output_folder(args.out, timestamped(model_home(args, model), "reproduce"))
    data = model.meta["config"]["data"]
    x, y = model_split(args, model, "test")
    if args.query >= len(y):
        raise ValueError(f"--query {args.query} is not a test image index (the test set has {len(y)})")
    if args.n_queries > len(y):
        raise ValueError(f"--n-queries {args.n_queries} exceeds the {len(y)} test images")
    if args.k >= len(y):
        raise ValueError(f"--k {args.k} must be smaller than the {len(y)} test images")
    probe = model_split(args, model, "val") if "style" in names else None
    results = run_experiments(model, x, y, names, query=args.query, k=args.k, n_queries=args.n_queries, seed=args.seed,
                              probe_data=probe)
    class_names = model.meta["dataset"]["class_names"]
    meta = {"checkpoint": str(model.meta["path"]), "dataset": data["dataset"], "epoch": model.meta["epoch"],
            "n": len(y), "experiments": names, "query": args.query, "k": args.k, "n_queries": args.n_queries,
            "recipe": _recipe(model.meta["config"]), "model_sha256": sha256_state(model),
            "data_sha256": sha256_tensors(x, y)}
    markdown = write_reproduce_report(results, out, meta, class_names)
    print(markdown)
    print(f"report written to {out}")
    return 0
