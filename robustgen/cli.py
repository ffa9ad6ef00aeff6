"""``robustgen`` command line: the only place that prints or exits."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from .checkpoint import CheckpointError
from .config import ConfigError, list_presets
from .data import DataError
from .runs import RunError

EXIT_USAGE = 2


def _add_common_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", metavar="MODEL",
                   help="a shipped model (fast-mnist, robust-mnist), a run folder or a checkpoint.pt "
                        "(default: the most recently trained run under --runs-dir)")
    p.add_argument("--runs-dir", default="runs", help="where runs live (default: ./runs)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument("--data-dir", help="folder with dataset files (EMNIST); default $ROBUSTGEN_DATA or ./data")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robustgen", description=(
        "Style-memory networks (Wiyatno & Orchard, 2018): train a generative classifier, "
        "detect adversarial inputs, reproduce the paper."))
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a style-memory network into a new run folder")
    p.add_argument("--config", default="fast-mnist", help=f"preset name ({', '.join(list_presets())}) or a TOML "
                   "file (default: fast-mnist)")
    p.add_argument("--dataset", help="mnist | emnist-letters | idx:PATH")
    p.add_argument("--data-dir", help="folder with dataset files (EMNIST); default $ROBUSTGEN_DATA or ./data")
    p.add_argument("--download", action="store_true", help="let torchvision download EMNIST if its files are missing")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--name", help="run name (the folder is <timestamp>-<name>)")
    p.add_argument("--runs-dir", help="where run folders are made (default: ./runs)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config key, e.g. --set train.noise_std=0.2 (repeatable)")
    p.add_argument("--resume", metavar="RUN", help="continue an interrupted run in its own folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser("eval", help="test accuracy and reconstruction errors of a trained run")
    _add_common_model_args(p)
    p.add_argument("--split", default="test", choices=["test", "val"])
    p.add_argument("--out", help="folder for eval-<split>.json/.md (default: the run folder)")

    p = sub.add_parser("attack", help="attack the network and report how well each detector score catches it")
    _add_common_model_args(p)
    p.add_argument("--method", default="pgd", help="comma-separated attacks: fgsm, bim, pgd, apgd, autoattack, square "
                   "(oblivious); adaptive-pgd, selective-pgd, orthogonal-pgd, guarded-apgd (detector-aware); "
                   "'strong' for all but fgsm and bim (default: pgd)")
    p.add_argument("--eps", default="0.1,0.2,0.3", help="comma-separated L-inf budgets in [0,1] units; "
                   "'8/255' style and inclusive ranges start:stop:step ('0:0.4:0.05') accepted (default: 0.1,0.2,0.3)")
    p.add_argument("--score", default="all", help="comma-separated detector scores, or 'all' (default)")
    p.add_argument("-n", "--n", type=int, default=10000, help="attack the first N test images (default: 10000; "
                   "under torchrun write -n: torchrun takes --n for one of its own options)")
    p.add_argument("--fpr", type=float, default=0.05, help="false-positive rate for the detector threshold (default: 0.05)")
    p.add_argument("--steps", type=int, help="iterations of every iterative attack (per search round of adaptive-pgd, "
                   "per target of selective/orthogonal-pgd); default: each attack's own (40 for the PGD family, "
                   "100 for apgd, autoattack and guarded-apgd)")
    p.add_argument("--step-size", type=float, help="step size of the PGD family in pixel units (default 0.01)")
    p.add_argument("--queries", type=int, help="queries of the gradient-free square attack (default 5000)")
    p.add_argument("--search-steps", type=int, default=5, help="binary-search rounds of adaptive-pgd (default 5)")
    p.add_argument("--targets", default="all", choices=["all", "untargeted"],
                   help="selective/orthogonal-pgd: also run targeted at every wrong class (default: all)")
    p.add_argument("--sanity-n", type=int, default=200,
                   help="inputs re-attacked by the eps-1.0 and doubled-steps sanity checks (default 200; 0 skips them)")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--seed", type=int, default=0, help="seed for random starts; each batch's is seeded by (seed, "
                   "index of its first input) (default 0)")
    p.add_argument("--out", help="output folder (default: <run>/attacks/<timestamp>-<methods>); must be new or empty")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("detect", help="score image files with a detector; one CSV row per image")
    _add_common_model_args(p)
    p.add_argument("--input", nargs="+", required=True, metavar="PATH",
                   help=".npy/.npz arrays, IDX image files or folders of PNG images")
    p.add_argument("--out", required=True, help="CSV file to write (must not exist)")
    p.add_argument("--score", default="recon", help="detector score (default: recon)")
    p.add_argument("--fpr", type=float, default=0.05, help="false-positive rate of the threshold (default 0.05)")
    p.add_argument("--detector", help="a detector saved with det.save(); default: fit one on the model's "
                   "validation split")
    p.add_argument("--uint8", action="store_true", help="read uint8 arrays as pixel / 255")
    p.add_argument("--fail-on-flag", action="store_true", help="exit with status 1 when any input is flagged")
    p.add_argument("--batch-size", type=int, default=500)

    p = sub.add_parser("compare", help="lay several attack reports side by side: one markdown table, one plot")
    p.add_argument("reports", nargs="+", metavar="REPORT", help="report folders written by `robustgen attack`")
    p.add_argument("--out", help="folder for compare.md/.csv/.png (default: ./runs/compare/<timestamp>); must be new or empty")

    p = sub.add_parser("export", help="write a run's weights (weights only, float16) and manifest, as the shipped models are")
    p.add_argument("--checkpoint", metavar="RUN", required=True, help="run folder or checkpoint.pt to export")
    p.add_argument("--name", required=True, help="model name (the files are NAME.pt and NAME.json)")
    p.add_argument("--out", required=True, help="folder for the two files (robustgen/pretrained to ship them)")
    p.add_argument("--dtype", default="float16", choices=["float16", "float32"])

    p = sub.add_parser("reproduce", help="the paper's experiments: figures and a markdown report")
    _add_common_model_args(p)
    p.add_argument("--experiments", default="all",
                   help="all, or comma-separated: reconstruction, misclassified, neighbours, interpolation, style")
    p.add_argument("--query", type=int, default=0, help="test image used as the neighbour query (default 0)")
    p.add_argument("--k", type=int, default=97, help="neighbours per space (paper: 97)")
    p.add_argument("--n-queries", type=int, default=1000, help="random queries for averaged neighbour statistics")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="output folder (default: <run>/reproduce/<timestamp>); must be new or empty")
    return parser


def _train(args) -> int:
    from .config import load_config
    from .train import train_run

    if args.resume:
        for flag in ("dataset", "batch_size", "lr", "seed", "name", "runs_dir"):
            if getattr(args, flag) is not None:
                raise ConfigError(f"--{flag.replace('_', '-')} cannot change a run being resumed; "
                                  "only --epochs and --device can")
        if args.overrides:
            raise ConfigError("--set cannot change a run being resumed; start a new run instead")
        run_dir = train_run(resume=args.resume, progress=not args.quiet, epochs=args.epochs, device=args.device)
    else:
        flags = {"data.dataset": args.dataset, "data.data_dir": args.data_dir, "train.epochs": args.epochs,
                 "train.batch_size": args.batch_size, "train.lr": args.lr, "train.seed": args.seed,
                 "train.device": args.device, "name": args.name, "runs_dir": args.runs_dir,
                 "data.download": True if args.download else None}
        overrides = [f"{k}={_toml(v)}" for k, v in flags.items() if v is not None] + args.overrides
        cfg = load_config(args.config, overrides)
        run_dir = train_run(cfg, progress=not args.quiet)  # under torchrun only rank 0 shows progress
    from .distributed import shutdown

    shutdown()
    if run_dir is None:  # a torchrun worker other than rank 0: rank 0 reports
        return 0
    from .checkpoint import load_checkpoint

    extra = load_checkpoint(run_dir)["extra"]
    print(f"validation accuracy {extra['val_accuracy']:.4f}")
    print(f"run folder: {run_dir}")
    return 0


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(v)


def _model_path(args) -> str | Path:
    from .runs import latest_run

    return args.checkpoint if args.checkpoint else latest_run(args.runs_dir)


def _model_split(args, model, split: str, limit: int | None = None):
    """(x, y) of ``split`` of the dataset the model was trained on (its data folder unless --data-dir)."""
    from .data import load_dataset

    data = model.meta["config"]["data"]
    return load_dataset(data["dataset"], split, args.data_dir or data["data_dir"], val_size=data["val_size"], limit=limit)


def _eval(args) -> int:
    import torch

    from .checkpoint import load_model
    from .model import check_class_count
    from .reports import markdown_table
    from .runs import resolve_device, write_json
    from .train import evaluate

    device = resolve_device(args.device)
    model = load_model(_model_path(args), device)
    data = model.meta["config"]["data"]
    x, y = _model_split(args, model, args.split)
    check_class_count(model, y, data["dataset"])
    with torch.inference_mode():
        result = evaluate(model, x, y)
    result = {"checkpoint": model.meta["path"], "dataset": data["dataset"], "split": args.split,
              "epoch": model.meta["epoch"], **result}
    rows = [{"metric": "accuracy", "value": result["accuracy"]},
            {"metric": "recon error, predicted softmax (L2)", "value": result["recon_pred_softmax"]},
            {"metric": "recon error, predicted one-hot label (L2)", "value": result["recon_pred_onehot"]},
            {"metric": "recon error, true label (L2)", "value": result["recon_true"]}]
    if args.split == "test":  # what the style memory holds: the probe is fitted on validation styles
        from .style_measures import style_measures

        x_val, y_val = _model_split(args, model, "val")
        style = style_measures(model, x_val, y_val, x, y)
        result["style"] = style
        rows += [{"metric": f"class probe accuracy from the style alone (chance {style['probe_chance']:.2f})",
                  "value": style["probe_accuracy"]},
                 {"metric": f"label sensitivity of the decoder (first {style['n_decoded']} images)",
                  "value": style["label_sensitivity"]},
                 {"metric": "decoding under label c classified as c (share of style x label pairs)",
                  "value": style["drawn_as_label"]}]
    folder = Path(args.out) if args.out else _model_home(args, model)
    folder.mkdir(parents=True, exist_ok=True)
    title = f"{data['dataset']} {args.split} split, N = {result['n']}, checkpoint epoch {result['epoch']}"
    table = markdown_table(rows)
    write_json(folder / f"eval-{args.split}.json", result)
    (folder / f"eval-{args.split}.md").write_text(f"# Evaluation\n\n{title} (`{result['checkpoint']}`)\n\n{table}")
    print(f"{title}\n")
    print(table)
    print(f"saved {folder / f'eval-{args.split}.json'} and .md")
    return 0


def _split_list(text: str, what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ValueError(f"--{what} needs at least one value")
    return items


STRONG = ["pgd", "apgd", "autoattack", "square", "adaptive-pgd", "selective-pgd", "orthogonal-pgd", "guarded-apgd"]
SUMMARY_COLUMNS = ["method", "eps", "score", "robust_acc", "auroc_successful", "tpr_at_fpr_5", "undetected_success_rate"]


def _attack(args) -> int:
    from .attacks import ATTACKS, is_adaptive, parse_eps_list
    from .benchmark import run_benchmark, worst_case
    from .checkpoint import load_model
    from .reports import markdown_table, write_detection_report
    from .runs import resolve_device, seed_everything
    from .sanity import failed
    from .scores import SCORES

    methods = STRONG if args.method == "strong" else _split_list(args.method, "method")
    for m in methods:
        if m not in ATTACKS:
            raise ValueError(f"unknown attack {m!r}; use one of {', '.join(ATTACKS)} or 'strong'")
    eps_list = parse_eps_list(args.eps)
    scores = list(SCORES) if args.score == "all" else _split_list(args.score, "score")
    for s in scores:
        if s not in SCORES:
            raise ValueError(f"unknown detector score {s!r}; use one of {', '.join(SCORES)} or 'all'")
    if args.n < 1 or not 0 < args.fpr < 1:
        raise ValueError("--n must be at least 1 and --fpr must lie strictly between 0 and 1")
    for flag in ("steps", "queries"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise ValueError(f"--{flag} must be at least 1")
    if args.step_size is not None and args.step_size <= 0:
        raise ValueError("--step-size must be positive")
    if args.sanity_n < 0 or args.batch_size < 1:
        raise ValueError("--sanity-n must be at least 0 and --batch-size at least 1")
    from .distributed import init_from_env, is_main, shutdown, world

    device = init_from_env(resolve_device(args.device))  # under torchrun: join the group, shard the attacks
    main = is_main()
    if not main:
        args.quiet = True
    model = load_model(_model_path(args), device)
    out = _new_output_folder(args, model, "attacks", "-" + "+".join(methods)) if main else None
    data = model.meta["config"]["data"]
    x_val, _ = _model_split(args, model, "val")
    x_test, y_test = _model_split(args, model, "test", limit=args.n)
    seed_everything(args.seed)
    kwargs = {"steps": args.steps, "step_size": args.step_size, "queries": args.queries,
              "search_steps": args.search_steps, "targets": args.targets}
    # progress in images: adaptive attacks run once per score, oblivious ones once for all scores
    total = sum(len(x_test) * (len(scores) if is_adaptive(m) else 1) for m in methods) * len(eps_list)
    bar = None
    if not args.quiet:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="img", desc="attacks")

    def progress(label: str, k: int) -> None:
        bar.update(k)

    def stage(text: str) -> None:
        bar.set_description(text)
        bar.refresh()

    result = run_benchmark(model, x_val, x_test, y_test, methods=methods, eps_list=eps_list, scores=scores,
                           fpr=args.fpr, batch_size=args.batch_size, attack_kwargs=kwargs, sanity_n=args.sanity_n,
                           on_attack=progress if bar else None, on_stage=stage if bar else None, seed=args.seed)
    if bar:
        bar.close()
    processes = world()[1]
    shutdown()
    if not main:
        return 0
    meta = {"checkpoint": str(model.meta["path"]), "dataset": data["dataset"], "n": len(x_test),
            "n_val": len(x_val), "fpr": args.fpr, "methods": methods, "eps": eps_list, "scores": scores,
            "seed": args.seed, "device": str(device), "processes": processes, "sanity_n": args.sanity_n,
            "budget": result.budgets, **kwargs}
    write_detection_report(result, out, meta)
    print(markdown_table(result.rows, SUMMARY_COLUMNS))
    print("per-input worst case (union over attacks):\n")
    print(markdown_table(worst_case(result), ["eps", "score", "n", "undetected_success_rate", "ci_low", "ci_high"]))
    for row in failed(result.sanity):
        print(f"warning: sanity check {row['check']} failed: {row['detail']}", file=sys.stderr)
    print(f"report written to {out} (detection.md holds every column)")
    return 0


def _model_home(args, model) -> Path:
    """Where a model's outputs go: its run folder, or ``<runs-dir>/pretrained/NAME`` for a shipped model."""
    if model.meta.get("pretrained"):
        return Path(args.runs_dir) / "pretrained" / model.meta["pretrained"]
    return Path(model.meta["path"]).parent


def _new_output_folder(args, model, kind: str, suffix: str = "") -> Path:
    import time

    out = Path(args.out) if args.out else _model_home(args, model) / kind / (time.strftime("%Y%m%d-%H%M%S") + suffix)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"output folder {out} is not empty; choose a new --out so no earlier report is overwritten")
    return out


def _reproduce(args) -> int:
    from .checkpoint import load_model
    from .experiments import EXPERIMENTS, run_experiments
    from .model import check_class_count
    from .reproduce_report import write_reproduce_report
    from .runs import resolve_device

    names = list(EXPERIMENTS) if args.experiments == "all" else _split_list(args.experiments, "experiments")
    device = resolve_device(args.device)
    model = load_model(_model_path(args), device)
    out = _new_output_folder(args, model, "reproduce")
    data = model.meta["config"]["data"]
    x, y = _model_split(args, model, "test")
    check_class_count(model, y, data["dataset"])
    probe = _model_split(args, model, "val") if "style" in names else None
    results = run_experiments(model, x, y, names, query=args.query, k=args.k, n_queries=args.n_queries, seed=args.seed,
                              probe_data=probe)
    class_names = model.meta["dataset"]["class_names"]
    meta = {"checkpoint": str(model.meta["path"]), "dataset": data["dataset"], "epoch": model.meta["epoch"],
            "n": len(y), "experiments": names, "query": args.query, "k": args.k, "n_queries": args.n_queries,
            "recipe": _recipe(model.meta["config"])}
    markdown = write_reproduce_report(results, out, meta, class_names)
    print(markdown)
    print(f"report written to {out}")
    return 0


def _recipe(cfg: dict) -> str:
    t = cfg["train"]
    return (f"trained {t['epochs']} epochs, Adam lr {t['lr']:g} ({t['lr_schedule']}), alpha {t['alpha']:g}, "
            f"noise {t['noise_std']:g}, shifts {t['shift']} px; paper: 250 epochs at lr 1e-5")


def _detect(args) -> int:
    import numpy as np

    from .detect import ReconstructionDetector
    from .inputs import read_inputs
    from .reports import write_csv
    from .runs import resolve_device

    out = Path(args.out)
    if out.exists():
        raise ValueError(f"{out} already exists; choose a new --out so nothing is overwritten")
    if not out.parent.is_dir():
        raise ValueError(f"the folder of --out ({out.parent}) does not exist")
    if not 0 < args.fpr < 1 or args.batch_size < 1:
        raise ValueError("--fpr must lie strictly between 0 and 1 and --batch-size must be at least 1")
    device = resolve_device(args.device)
    if args.detector:
        det = ReconstructionDetector.load(args.detector, device)
        fitted = f"loaded from {args.detector}"
    else:
        from .checkpoint import load_model

        model = load_model(_model_path(args), device)
        data = model.meta["config"]["data"]
        x_val, _ = _model_split(args, model, "val")
        det = ReconstructionDetector(model, args.score, batch_size=args.batch_size).fit(x_val, fpr=args.fpr)
        fitted = f"fitted at FPR {args.fpr:g} on the {len(x_val)} validation images of {data['dataset']}"
    batches, errors = read_inputs(args.input, uint8=args.uint8, image_size=det.model.spec.image_size)
    for message in errors:
        print(f"robustgen detect: skipped {message}", file=sys.stderr)
    rows = []
    for batch in batches:
        report, flagged = det.detect(batch.images)
        rows += [{"source": s, "index": i, "prediction": int(p), "confidence": float(c), "score": float(v),
                  "threshold": det.threshold, "flagged": bool(f)}
                 for s, i, p, c, v, f in zip(batch.sources, batch.indices, report["predictions"],
                                             report["confidences"], report["scores"], flagged)]
    if not rows:
        raise ValueError("no input could be read; nothing was scored")
    write_csv(out, rows, ["source", "index", "prediction", "confidence", "score", "threshold", "flagged"])
    n_flagged = int(np.sum([r["flagged"] for r in rows]))
    print(f"scored {len(rows)} images; {n_flagged} flagged ({n_flagged / len(rows):.1%}) by `{det.score_name}` "
          f"above {det.threshold:.4g} (detector {fitted})")
    print(f"wrote {out}")
    if errors:
        return EXIT_USAGE
    return 1 if (args.fail_on_flag and n_flagged) else 0


def _compare(args) -> int:
    import time

    from .compare import compare_reports
    from .reports import markdown_table, plot_compare, write_csv

    rows, curves = compare_reports(args.reports)
    out = Path(args.out) if args.out else Path("runs") / "compare" / time.strftime("%Y%m%d-%H%M%S")
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"output folder {out} is not empty; choose a new --out so no earlier report is overwritten")
    out.mkdir(parents=True, exist_ok=True)
    table = markdown_table(rows)
    sources = "\n".join(f"- `{r}`" for r in args.reports)
    (out / "compare.md").write_text(f"# Reports side by side\n\n{sources}\n\nPer eps and score: the classifier's robust "
                                    "accuracy under the strongest attack of each report, and the per-input worst-case "
                                    f"undetected-success (any attack of the report).\n\n{table}")
    write_csv(out / "compare.csv", rows)
    plot_compare(curves, out / "compare.png")
    print(table)
    print(f"written to {out} (compare.md, compare.csv, compare.png)")
    return 0


def _export(args) -> int:
    from .pretrained import export

    manifest = export(args.checkpoint, args.name, args.out, args.dtype)
    import json

    record = json.loads(manifest.read_text())
    print(f"test accuracy {record['test']['accuracy']:.4f} (first 1,000: {record['test']['accuracy_first_1000']:.4f}) "
          f"with the exported {args.dtype} weights")
    print(f"wrote {manifest.with_suffix('.pt')} and {manifest}")
    return 0


COMMANDS = {"train": _train, "eval": _eval, "attack": _attack, "detect": _detect, "compare": _compare,
            "export": _export, "reproduce": _reproduce}


def _warning_printer(command: str):
    """showwarning for the CLI: robustgen's own warnings as one plain line, others as Python prints them."""
    from .detect import ThresholdTieWarning

    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, ThresholdTieWarning):
            print(f"robustgen {command}: warning: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    return show


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_printer(args.command)
            return COMMANDS[args.command](args)
    except (ConfigError, DataError, CheckpointError, RunError, ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"robustgen {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        hint = " (resume training with `robustgen train --resume RUN`)" if args.command == "train" else ""
        print(f"robustgen {args.command}: interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
