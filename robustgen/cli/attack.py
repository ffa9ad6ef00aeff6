"""``robustgen attack``: attack the network and report how well each detector score catches it."""

from __future__ import annotations

import sys
from pathlib import Path

from .common import (
    add_autoencoder_arg,
    add_foreign_args,
    add_model_args,
    at_least,
    fraction,
    load_autoencoder,
    load_classifier,
    model_home,
    model_path,
    model_split,
    new_output_folder,
    positive_float,
    score_detector,
    seed_value,
    split_list,
    timestamped,
)
from .resume import RECORD, apply_record, defaults_of, write_record

HELP = "attack the network and report how well each detector score catches it"
DEFAULTS: dict = {}  # the parser's defaults of the options that define a run (resume.FIXED)
SUMMARY_COLUMNS = ["method", "eps", "score", "robust_acc", "auroc_successful", "tpr_at_fpr", "undetected_success_rate"]


def add_parser(sub) -> None:
    p = sub.add_parser("attack", help=HELP)
    add_model_args(p)
    add_autoencoder_arg(p)
    add_foreign_args(p)
    p.add_argument("--method", default="pgd", help="comma-separated attacks: fgsm, bim, pgd, apgd, autoattack, square "
                   "(oblivious); adaptive-pgd, selective-pgd, orthogonal-pgd, guarded-apgd (detector-aware); "
                   "'strong' for all but fgsm and bim (default: pgd)")
    p.add_argument("--eps", default="0.1,0.2,0.3", help="comma-separated L-inf budgets in [0,1] units; "
                   "'8/255' style and inclusive ranges start:stop:step ('0:0.4:0.05') accepted (default: 0.1,0.2,0.3)")
    p.add_argument("--score", default="all", help="comma-separated detector scores, or 'all' (default; the magnet "
                   "scores only with --autoencoder)")
    p.add_argument("-n", "--n", type=at_least(1), default=10000, help="attack the first N test images (default: "
                   "10000; under torchrun write -n: torchrun takes --n for one of its own options)")
    p.add_argument("--n-val", type=at_least(1), help="fit the thresholds on the first N clean validation images "
                   "(default: all of them, 5,000 for MNIST; fewer make quick runs, with a noisier threshold)")
    p.add_argument("--fpr", type=fraction, default=0.05, help="false-positive rate for the detector threshold "
                   "(default: 0.05)")
    p.add_argument("--steps", type=at_least(1), help="iterations of every iterative attack (per search round of "
                   "adaptive-pgd, per target of selective/orthogonal-pgd); default: each attack's own (40 for the PGD "
                   "family, 100 for apgd, autoattack and guarded-apgd)")
    p.add_argument("--step-size", type=positive_float, help="step size of the PGD family in pixel units (default 0.01)")
    p.add_argument("--queries", type=at_least(1), help="queries of the gradient-free square attack (default 5000)")
    p.add_argument("--search-steps", type=at_least(1), default=5, help="binary-search rounds of adaptive-pgd "
                   "(at least 1; default 5)")
    p.add_argument("--targets", default="all", choices=["all", "untargeted"],
                   help="selective/orthogonal-pgd: also run targeted at every wrong class (default: all)")
    p.add_argument("--precision", default="float32", choices=["float32", "bfloat16"],
                   help="arithmetic of the attacks' passes: bfloat16 autocast is faster on CPUs with bfloat16 units "
                   "(AVX512-BF16, AMX) and GPUs; gradient-free attacks (square, and AutoAttack's Square) keep float32, "
                   "and every outcome is judged in float32 either way (default: float32)")
    p.add_argument("--full", action="store_true", help="run every attack on every input (per-attack tables); by "
                   "default each attack runs only on the inputs still standing for its score (a cascade: same worst "
                   "case, a fraction of the time)")
    p.add_argument("--sanity-n", type=at_least(0), default=200,
                   help="inputs re-attacked by the eps-1.0 and doubled-steps sanity checks (default 200; 0 skips them)")
    p.add_argument("--batch-size", type=at_least(1), default=500)
    p.add_argument("--seed", type=seed_value, default=0, help="seed of every attack's randomness (random starts, "
                   "Square's proposals); each batch's is seeded by (seed, index of its first input) (default 0)")
    p.add_argument("--out", help="output folder (default: <run>/attacks/<timestamp>-<methods>); must be new or empty")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--resume", metavar="DIR", help="continue an interrupted run in its report folder DIR: every "
                   "attack it finished is kept there and not run again; its options are read from DIR/run.json "
                   "(only --device and --quiet may be given)")
    global DEFAULTS
    DEFAULTS = defaults_of(p)


def run(args) -> int:
    from ..attacks import ATTACKS, STRONG, is_adaptive, parse_eps_list
    from ..detectors.registry import AUTOENCODER_SCORES, DECODER_SCORES, OOD, SCORES
    from ..distributed import init_from_env, is_main, shutdown, world
    from ..evaluation.sanity import failed
    from ..evaluation.store import OutcomeStore
    from ..evaluation.worst_case import worst_case
    from ..evaluation_run import OUTCOMES, run_and_report, run_digests
    from ..foreign import is_factory
    from ..model import StyleMemoryNet
    from ..reports.tables import markdown_table
    from ..runs import resolve_device, seed_everything

    record = apply_record(args, DEFAULTS) if args.resume else None
    methods = STRONG if args.method == "strong" else split_list(args.method, "method")
    for m in methods:
        if m not in ATTACKS:
            raise ValueError(f"unknown attack {m!r}; use one of {', '.join(ATTACKS)} or 'strong'")
    eps_list = parse_eps_list(args.eps)
    scores = None if args.score == "all" else split_list(args.score, "score")
    for s in scores or []:
        if s not in SCORES and not is_factory(s):
            raise ValueError(f"unknown detector score {s!r}; use one of {', '.join(SCORES)}, 'all', or "
                             "package.module:function (a factory given the model, returning a score function)")
    device = init_from_env(resolve_device(args.device))  # under torchrun: join the group, shard the attacks
    main = is_main()
    if not main:
        args.quiet = True
    model = load_classifier(args, device)
    if scores is None:  # every score this model and these options can serve
        scores = [s for s in SCORES if (args.autoencoder or s not in AUTOENCODER_SCORES) and s not in OOD
                  and (isinstance(model, StyleMemoryNet) or (s not in DECODER_SCORES
                                                            and (s != "mahalanobis" or args.feature_layer)))]
    autoencoder = load_autoencoder(args, model, scores, device)
    # every score as a detector now, so that one the model cannot serve is refused before anything is written
    entries = [score_detector(model, s, args.batch_size, autoencoder) for s in scores]
    scores = [e.score_name for e in entries]
    if args.resume:
        out = Path(args.resume)
    else:
        out = new_output_folder(args.out, timestamped(model_home(args, model), "attacks", "-" + "+".join(methods))) \
            if main else None
    data = model.meta["config"]["data"]
    x_val, _ = model_split(args, model, "val", limit=args.n_val)
    x_test, y_test = model_split(args, model, "test", limit=args.n)
    digests = run_digests(model, x_val, x_test, y_test, autoencoder)
    if record is None and main:  # a resumed run's digests are checked by the store of its kept outcomes
        write_record(out, args, None if args.model else str(model_path(args)), digests)
    store = OutcomeStore(out / OUTCOMES, write=main, digests=digests) if out is not None else None
    seed_everything(args.seed)
    kwargs = {"steps": args.steps, "step_size": args.step_size, "queries": args.queries,
              "search_steps": args.search_steps, "targets": args.targets, "precision": args.precision}
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

    processes = world()[1]
    meta = {"checkpoint": str(model.meta["path"]), "dataset": data["dataset"],
            "autoencoder": str(autoencoder.meta["path"]) if autoencoder is not None else None,
            "device": str(device), "processes": processes, **digests}
    result = run_and_report(model, x_val, x_test, y_test, entries, methods=methods, eps_list=eps_list, out=out, meta=meta,
                            fpr=args.fpr, batch_size=args.batch_size, attack_kwargs=kwargs, sanity_n=args.sanity_n,
                            seed=args.seed, autoencoder=autoencoder, store=store, write=main, full=bool(args.full),
                            on_attack=progress if bar else None, on_stage=stage if bar else None)
    if bar:
        bar.close()
    shutdown()
    if not main:
        return 0
    (out / RECORD).unlink(missing_ok=True)  # the report holds what the record held
    print(markdown_table(result.rows, SUMMARY_COLUMNS))
    print("per-input worst case (union over attacks), beside the eps-0 floor (clean inputs misclassified and "
          "not flagged):\n")
    print(markdown_table(worst_case(result), ["eps", "score", "n", "undetected_success_rate", "ci_low", "ci_high",
                                              "eps0_floor"]))
    for row in failed(result.sanity):
        print(f"warning: sanity check {row['check']} failed: {row['detail']}", file=sys.stderr)
    for row in result.gradients:
        if row["gradient"] != "ok":
            print(f"warning: score {row['score']}: input gradient {row['gradient']} ({row['detail']}); {row['action']}",
                  file=sys.stderr)
    print(f"report written to {out} (detection.md holds every column)")
    return 0
