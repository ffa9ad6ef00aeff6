"""Figures. The only module that imports matplotlib: lazily, and through ``matplotlib.figure.Figure``
rather than pyplot, so no global backend or state is touched and importing robustgen stays fast."""

from __future__ import annotations

import os
from pathlib import Path


def new_figure(width: float, height: float, dpi: int = 100):
    """A stand-alone matplotlib Figure (no pyplot state); save it with ``fig.savefig(path)``."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=dpi, layout="constrained")


def plot_roc(roc_rows: list[dict], path: str | os.PathLike) -> Path:
    """ROC curves: a panel per (method, eps), a line per score."""
    import pandas as pd

    frame = pd.DataFrame(roc_rows)
    panels = list(frame.groupby(["method", "eps"], sort=False))
    methods = list(dict.fromkeys(frame["method"]))
    eps_values = list(dict.fromkeys(frame["eps"]))
    fig = new_figure(3.6 * len(eps_values), 3.4 * len(methods), dpi=110)
    axes = fig.subplots(len(methods), len(eps_values), squeeze=False, sharex=True, sharey=True)
    for (method, eps), panel in panels:
        ax = axes[methods.index(method)][eps_values.index(eps)]
        for score, curve in panel.groupby("score", sort=False):
            ax.plot(curve["fpr"], curve["tpr"], label=score, lw=1.4)
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
        ax.set_title(f"{method}, eps = {eps:g}", fontsize=10)
        ax.set_xlabel("false-positive rate (clean)")
        ax.set_ylabel("true-positive rate (attacked)")
        ax.legend(fontsize=8, loc="lower right")
    path = Path(path)
    fig.savefig(path)
    return path


def plot_security_curve(rows: list[dict], path: str | os.PathLike, title: str = "") -> Path:
    """One report's security curve (``rows`` as from ``benchmark.security_curve``): see ``plot_compare``."""
    return plot_compare([{"report": "", **r} for r in rows], path, title)


def plot_compare(curves: list[dict], path: str | os.PathLike, title: str = "") -> Path:
    """Two panels against eps: the classifier's robust accuracy under the strongest attack and the
    per-input worst-case undetected-success; a colour per score and, for several reports
    (``curves[i]["report"]``), a line style and marker per report. The legend lists the scores and
    the reports apart (not every pair), below the panels, so that many reports leave the axes readable."""
    import pandas as pd
    from matplotlib.lines import Line2D

    frame = pd.DataFrame(curves)
    styles, markers = ["-", "--", ":", "-."], ["o", "s", "^", "D", "v", "P", "X"]
    reports = list(dict.fromkeys(frame["report"]))
    scores = list(dict.fromkeys(frame["score"]))

    def look(k: int) -> dict:  # report k's line style and marker: distinct for 28 reports
        return {"ls": styles[k % len(styles)], "marker": markers[(k // len(styles)) % len(markers)]}

    handles = [Line2D([], [], color=f"C{k % 10}", marker="o", ms=3, lw=1.3, label=s) for k, s in enumerate(scores)]
    if len(reports) > 1:
        handles += [Line2D([], [], color="0.35", ms=3, lw=1.3, label=r, **look(k)) for k, r in enumerate(reports)]
    ncol = 3 if len(reports) > 1 else min(len(handles), 6)
    fig = new_figure(9.0, 3.5 + 0.2 * -(-len(handles) // ncol), dpi=110)
    left, right = fig.subplots(1, 2, sharex=True)
    for (report, score), curve in frame.groupby(["report", "score"], sort=False):
        kw = {"color": f"C{scores.index(score) % 10}", "lw": 1.3, "ms": 3, **look(reports.index(report))}
        left.plot(curve["eps"], curve["robust_acc"], **kw)
        right.plot(curve["eps"], curve["undetected_success_rate"], **kw)
    left.set_ylabel("robust accuracy (classifier, strongest attack)")
    right.set_ylabel("undetected-success (any attack, per input)")
    for ax in (left, right):
        ax.set_xlabel("eps (L-inf, pixel units)")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    fig.legend(handles=handles, loc="outside lower center", ncol=ncol, fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    path = Path(path)
    fig.savefig(path)
    return path


def tile(images, ncols: int, pad: int = 2, fill: float = 1.0):
    """Tile images (N, C, H, W) into one numpy array, row-major, ``pad`` pixels of ``fill`` between
    cells (missing cells at the end are left blank): (rows, cols) for one channel, (rows, cols, C)
    for several."""
    import numpy as np

    images = np.asarray(images) if len(images) else np.zeros((0, 1, 1, 1))
    n, c, h, w = images.shape
    nrows = max(1, -(-n // ncols))
    out = np.full((nrows * (h + pad) - pad, ncols * (w + pad) - pad, c), fill, dtype=np.float32)
    for i, img in enumerate(images):
        r, k = divmod(i, ncols)
        out[r * (h + pad): r * (h + pad) + h, k * (w + pad): k * (w + pad) + w] = img.transpose(1, 2, 0)
    return out[..., 0] if c == 1 else out


def show_tiles(ax, images, ncols: int, pad: int = 2) -> None:
    """Draw tiled images on ``ax``: grey ones with the ink dark on white, as on paper; colour ones as they are."""
    import numpy as np

    if len(images) and np.asarray(images).shape[1] > 1:
        ax.imshow(tile(images, ncols, pad, fill=1.0).clip(0, 1), interpolation="nearest")
    else:
        ax.imshow(1.0 - tile(images, ncols, pad, fill=0.0), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
