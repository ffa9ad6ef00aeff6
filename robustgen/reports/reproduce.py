"""Figures and the markdown report of ``robustgen reproduce`` (the paper's experiments).

Figures are drawn with ``reports.new_figure`` (matplotlib stays inside ``reports``); numbers come
only from the experiment results passed in.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .figures import new_figure, show_tiles
from .tables import fmt_value, markdown_table, write_csv

# What the paper states (Wiyatno & Orchard 2018, sections 4.1 and 4.3). Only numbers the paper
# gives are listed; the neighbour distances are those quoted for its Fig. 7/8 query.
PAPER = {
    "mnist": {"test_accuracy": 0.9848},
    "emnist-letters": {"test_accuracy": 0.9127},
    "neighbours_image_space": {"mean_image_distance": 8.6, "mean_style_distance": 1.2},
    "neighbours_style_space": {"mean_image_distance": 9.3, "mean_style_distance": 0.98},
}


def _label_columns(ax, names: list[str], size: int, pad: int = 2, fontsize: int = 8) -> None:
    for i, name in enumerate(names):
        ax.text(i * (size + pad) + size / 2, -2, name, ha="center", va="bottom", fontsize=fontsize)


def _grid_figure(cells, ncols: int, col_labels: list[str], title: str, cell_inches: float, extra_height: float,
                 label_size: int = 8):
    """One axes of tiled images with a label above each column and a title; returns (fig, ax)."""
    import torch

    cells = torch.stack(list(cells)) if not isinstance(cells, torch.Tensor) else cells
    rows = -(-len(cells) // ncols)
    fig = new_figure(max(6.0, cell_inches * ncols + 1.0), cell_inches * rows + extra_height, dpi=110)
    ax = fig.subplots()
    show_tiles(ax, cells, ncols=ncols)
    _label_columns(ax, col_labels, cells.shape[-1], fontsize=label_size)
    ax.set_title(title, fontsize=9, pad=14)
    return fig, ax


def plot_reconstruction(r: dict, class_names, path) -> Path:
    import torch

    n = len(r["indices"])
    fig, ax = _grid_figure(torch.cat([r["images"], r["reconstructions"]]), n,
                           [class_names[int(c)] for c in r["labels"]],
                           "Test images (top) and their reconstructions from the predicted softmax and style "
                           "memory (bottom), two styles per class", 0.55, 1.5)
    ax.set_ylabel("reconstruction | input", fontsize=9)
    fig.savefig(path)
    return Path(path)


def plot_misclassified(r: dict, class_names, path) -> Path | None:
    import torch

    n = len(r["indices"])
    if n == 0:
        return None
    size = r["images"].shape[-1]
    fig, ax = _grid_figure(torch.cat([r["images"], r["recon_pred"], r["recon_true"]]), n,
                           [f"true {class_names[int(t)]}" for t in r["labels"]],
                           "Misclassified test images (top), redrawn under the predicted softmax (middle; red: "
                           "predicted class and confidence) and under the one-hot true label (bottom)",
                           0.75, 0.8, label_size=7)
    for i in range(n):
        ax.text(i * (size + 2) + size / 2, 2 * (size + 2) - 1, f"{class_names[int(r['pred'][i])]} "
                f"{float(r['confidence'][i]):.2f}", ha="center", va="bottom", fontsize=6.5, color="tab:red")
    ax.set_ylabel("true label | predicted | input", fontsize=8)
    fig.savefig(path)
    return Path(path)


def plot_neighbours(r: dict, class_names, path) -> Path:
    import torch

    fig = new_figure(11, 6.2, dpi=110)
    axes = fig.subplots(1, 2)
    for ax, space in zip(axes, ("image", "style")):
        s = r["single"][space]
        show_tiles(ax, torch.cat([r["query_image"][None], s["images"]]), ncols=10)
        counts = ", ".join(f"{class_names[c]}:{k}" for c, k in enumerate(s["class_counts"]) if k)
        ax.set_title(f"{r['k']} nearest in {space} space (first cell: query, class "
                     f"{class_names[r['query_label']]})", fontsize=9)
        ax.set_xlabel(f"counts {counts}\nmean distance: image {s['mean_image_distance']:.2f}, "
                      f"style {s['mean_style_distance']:.3f}", fontsize=8)
    fig.savefig(path)
    return Path(path)


def plot_interpolation(r: dict, class_names, path) -> Path:
    lam = r["lambdas"]
    size = r["grid"].shape[-1]
    cells = []
    for k in range(len(r["classes"])):  # [image 2] [lambda = 0.1 .. 1.0] [image 1]
        cells += [r["endpoints"][k, 1], *r["grid"][k], r["endpoints"][k, 0]]
    fig, ax = _grid_figure(cells, len(lam) + 2, ["m2 img", *[f"{v:.1f}" for v in lam], "m1 img"],
                           "Class decoded with style lambda*m1 + (1-lambda)*m2 (columns: lambda)", 0.6, 1.0,
                           label_size=7)
    ax.set_yticks([k * (size + 2) + size / 2 for k in range(len(r["classes"]))], [class_names[c] for c in r["classes"]])
    fig.savefig(path)
    return Path(path)


def plot_style_transfer(r: dict, class_names, path) -> Path:
    c = r["transfer"].shape[1]
    cells = []
    for k in range(len(r["transfer_sources"])):
        cells += [r["transfer_images"][k], *r["transfer"][k]]
    fig, _ = _grid_figure(cells, c + 1, ["source", *class_names[:c]],
                          "Style transfer: each source's style memory decoded under every class label", 0.55, 1.0,
                          label_size=7)
    fig.savefig(path)
    return Path(path)


def _cmp(ours: float, paper: float | None, pct: bool = False) -> dict:
    f = (lambda v: f"{100 * v:.2f} %") if pct else (lambda v: fmt_value(v, 3))
    row = {"ours": f(ours), "paper": f(paper) if paper is not None else "not stated"}
    if paper is not None and not math.isnan(ours):
        row["difference"] = (f"{100 * (ours - paper):+.2f} points" if pct else f"{ours - paper:+.3f}")
    else:
        row["difference"] = ""
    return row


def reproduce_markdown(results: dict, meta: dict, class_names) -> str:
    """The report: every number we measured next to the paper's, and where they differ."""
    ds = meta["dataset"]
    lines = ["# Reproducing \"Style Memory: Making a Classifier Network Generative\"", "",
             f"Checkpoint `{meta['checkpoint']}` (dataset `{ds}`, epoch {meta['epoch']}), "
             f"{meta['n']} test images. All numbers below are computed by `robustgen reproduce`.", ""]
    acc = results["accuracy"]
    paper_acc = PAPER.get(ds, {}).get("test_accuracy")
    rows = [{"quantity": "test accuracy", **_cmp(acc, paper_acc, pct=True)}]
    lines += ["## Classification", "", markdown_table(rows)]
    if paper_acc is not None:
        verdict = "above" if acc > paper_acc else "below"
        lines += [f"Our accuracy is {abs(100 * (acc - paper_acc)):.2f} points {verdict} the paper's "
                  f"({meta['recipe']}).", ""]
    if "reconstruction" in results:
        r = results["reconstruction"]
        lines += ["## Reconstruction (Fig. 3/4)", "", "![reconstruction](reconstruction.png)", "",
                  markdown_table([
                      {"quantity": "mean L2 reconstruction error, all test images", "value": r["mean_error_all"]},
                      {"quantity": "... correctly classified", "value": r["mean_error_correct"]},
                      {"quantity": f"... misclassified ({r['n_misclassified']} images)", "value": r["mean_error_misclassified"]},
                  ]),
                  "The paper shows reconstructions but gives no reconstruction-error figure to compare with.", ""]
    if "misclassified" in results:
        r = results["misclassified"]
        lines += ["## Misclassified inputs (Fig. 5/6)", "", "![misclassified](misclassified.png)", "",
                  markdown_table([
                      {"quantity": "misclassified test images", "value": r["n_misclassified"]},
                      {"quantity": "mean error under the predicted softmax", "value": r["mean_error_pred"]},
                      {"quantity": "mean error under the one-hot predicted label", "value": r["mean_error_pred_onehot"]},
                      {"quantity": "mean error under the one-hot true label", "value": r["mean_error_true"]},
                      {"quantity": "share whose error drops when the one-hot label is corrected",
                       "value": r["share_error_drops"]},
                  ]),
                  "The paper shows that redrawing a misclassified image under its true label often looks closer "
                  "to the input; the share above measures how often the L2 error agrees.", ""]
    if "neighbours" in results:
        r = results["neighbours"]
        img, sty = r["single"]["image"], r["single"]["style"]
        lines += ["## Nearest neighbours: image space vs style space (Fig. 7/8)", "", "![neighbours](neighbours.png)", "",
                  f"Query: test image {r['query']} (class {class_names[r['query_label']]}), k = {r['k']}."
                  + ("" if ds == "mnist" else f" The paper's columns are its MNIST figures; this model is on `{ds}`, "
                     "so only the direction of change compares."), "",
                  markdown_table([
                      {"neighbours found in": "image space", "mean image distance": img["mean_image_distance"],
                       "paper": PAPER["neighbours_image_space"]["mean_image_distance"],
                       "mean style distance": img["mean_style_distance"],
                       "paper ": PAPER["neighbours_image_space"]["mean_style_distance"]},
                      {"neighbours found in": "style space", "mean image distance": sty["mean_image_distance"],
                       "paper": PAPER["neighbours_style_space"]["mean_image_distance"],
                       "mean style distance": sty["mean_style_distance"],
                       "paper ": PAPER["neighbours_style_space"]["mean_style_distance"]},
                  ], digits=3),
                  "Per-class counts among the neighbours of this query:", "",
                  markdown_table([{"space": sp, **{class_names[c]: k for c, k in enumerate(r["single"][sp]["class_counts"])}}
                                  for sp in ("image", "style")]),
                  f"Averaged over {r['n_queries']} random test queries (beyond the paper):", "",
                  markdown_table([{"space": sp, **r["averaged"][sp]} for sp in ("image", "style")]),
                  _distance_verdict(img, sty), "",
                  f"Chance level for the same-class share (class frequencies squared, summed): "
                  f"{r['chance_same_class_share']:.3f}. " + _neighbour_verdict(r), ""]
    if "interpolation" in results:
        lines += ["## Style interpolation and transfer (Fig. 9-11)", "", "![interpolation](interpolation.png)", "",
                  "![style transfer](style_transfer.png)", "",
                  "Rows blend the style memories of two differently written images of the same class; lambda = 1 "
                  "gives the first image's style. The paper's figures are qualitative; there is no number to compare.", ""]
    if "style" in results:
        r = results["style"]
        lines += ["## What the style memory holds (beyond the paper)", "",
                  "The paper's idea is that the class vector carries *what* an input is and the style memory *how* it "
                  "was drawn. Three measures of that (`robustgen.style_measures`):", "",
                  markdown_table([
                      {"quantity": f"class probe accuracy from the style alone (logistic regression fitted on "
                                   f"{r['n_probe_fit']} validation styles, scored on {r['n_probe_eval']} test styles; "
                                   f"chance {r['probe_chance']:.2f})", "value": r["probe_accuracy"]},
                      {"quantity": f"label sensitivity: mean L2 distance between decodings under the predicted and "
                                   f"the other labels, over the clean reconstruction error ({r['n_decoded']} images)",
                       "value": r["label_sensitivity"]},
                      {"quantity": "share of (style, label c) decodings the network classifies as c",
                       "value": r["drawn_as_label"]},
                  ]),
                  "A class-agnostic style memory (the paper's claim) has a probe near chance and decodings that follow "
                  "the label (drawn-as-label near 1).", ""]
    return "\n".join(lines)


def _distance_verdict(img: dict, sty: dict) -> str:
    """Compare the direction of change with the paper's (its query image is not identified, so the
    absolute distances are not comparable)."""
    p_img, p_sty = PAPER["neighbours_image_space"], PAPER["neighbours_style_space"]
    ours_up = sty["mean_image_distance"] > img["mean_image_distance"]
    ours_down = sty["mean_style_distance"] < img["mean_style_distance"]
    agree = "agrees" if ours_up and ours_down else "does not fully agree"
    return (f"Going from image-space to style-space neighbours, the paper's mean image distance rises "
            f"{p_img['mean_image_distance']} -> {p_sty['mean_image_distance']} and the style distance falls "
            f"{p_img['mean_style_distance']} -> {p_sty['mean_style_distance']}; ours goes "
            f"{img['mean_image_distance']:.2f} -> {sty['mean_image_distance']:.2f} and "
            f"{img['mean_style_distance']:.3f} -> {sty['mean_style_distance']:.3f}, which {agree} in direction. "
            "The absolute values differ: the paper's query image is not identified, and our style units are "
            "trained with a different recipe.")


def _neighbour_verdict(r: dict) -> str:
    img, sty = r["averaged"]["image"], r["averaged"]["style"]
    chance = r["chance_same_class_share"]
    parts = [f"Style-space neighbours share the query's class {100 * sty['same_class_share']:.1f} % of the time "
             f"against {100 * img['same_class_share']:.1f} % for image-space neighbours"]
    if chance < sty["same_class_share"] < img["same_class_share"]:
        parts.append("so the style memory holds less class information than the pixels but is not "
                     "class-agnostic (it is above chance), as the paper argues.")
    else:
        parts.append("which does not match the paper's picture of a style memory that is less class-specific "
                     "than pixels yet above chance.")
    return ", ".join(parts)


def write_reproduce_report(results: dict, out, meta: dict, class_names) -> str:
    """All figures, ``reproduce.md``, ``numbers.json`` and ``neighbour_counts.csv`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if "reconstruction" in results:
        plot_reconstruction(results["reconstruction"], class_names, out / "reconstruction.png")
    if "misclassified" in results:
        plot_misclassified(results["misclassified"], class_names, out / "misclassified.png")
    if "neighbours" in results:
        r = results["neighbours"]
        plot_neighbours(r, class_names, out / "neighbours.png")
        write_csv(out / "neighbour_counts.csv", [{"space": sp, "class": class_names[c], "count": k}
                                                 for sp in ("image", "style")
                                                 for c, k in enumerate(r["single"][sp]["class_counts"])])
    if "interpolation" in results:
        plot_interpolation(results["interpolation"], class_names, out / "interpolation.png")
        plot_style_transfer(results["interpolation"], class_names, out / "style_transfer.png")
    markdown = reproduce_markdown(results, meta, class_names)
    (out / "reproduce.md").write_text(markdown)
    (out / "numbers.json").write_text(json.dumps({"meta": meta, "paper": PAPER, **numbers_only(results)}, indent=2) + "\n")
    return markdown


def numbers_only(results: dict) -> dict:
    """The scalar results (no tensors), for numbers.json."""
    def keep(v):
        return isinstance(v, (int, float, str)) or (isinstance(v, list) and all(isinstance(x, (int, float)) for x in v))

    out = {"accuracy": results["accuracy"]}
    for name, r in results.items():
        if isinstance(r, dict):
            flat = {k: v for k, v in r.items() if keep(v)}
            if name == "neighbours":
                flat["single"] = {sp: {k: v for k, v in d.items() if keep(v)} for sp, d in r["single"].items()}
                flat["averaged"] = r["averaged"]
            out[name] = flat
    return out
