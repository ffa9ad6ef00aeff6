"""The experiments of "Style Memory: Making a Classifier Network Generative" (Wiyatno & Orchard,
2018), as functions that return data (tensors and numbers); ``reports`` draws them.

    reconstruction   Fig. 3/4   test images and their reconstructions (predicted softmax + style)
    misclassified    Fig. 5/6   misclassified images redrawn under the prediction and the true label
    neighbours       Fig. 7/8   nearest neighbours in image space (784-d) vs style space (16-d)
    interpolation    Fig. 9-11  decoding a class with a style blended between two images; style transfer
    style            beyond the paper: how much class the style memory holds (``style_measures``)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..inference import Encoded, encode_dataset
from ..model import StyleMemoryNet, recon_error

EXPERIMENTS = ("reconstruction", "misclassified", "neighbours", "interpolation", "style")


@torch.no_grad()
def _decode(model: StyleMemoryNet, class_vectors: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    device = next(model.parameters()).device
    return model.decode(class_vectors.to(device), styles.to(device)).cpu()


def distinct_style_pairs(enc: Encoded, num_classes: int, pool: int = 200) -> dict[int, tuple[int, int]]:
    """Per class, two correctly classified images of clearly different style: among the first
    ``pool`` of that class, the pair farthest apart in style space. Classes with fewer than two
    correct images are left out."""
    pairs = {}
    for c in range(num_classes):
        idx = ((enc.y == c) & enc.correct).nonzero()[:, 0][:pool]
        if len(idx) < 2:
            continue
        d = torch.cdist(enc.style[idx], enc.style[idx])
        flat = int(d.argmax())
        i, j = divmod(flat, len(idx))
        pairs[c] = (int(idx[i]), int(idx[j]))
    if not pairs:
        raise ValueError("no class has two correctly classified test images, so there is nothing to "
                         "reconstruct or interpolate; train the model longer")
    return pairs


def reconstruction(model: StyleMemoryNet, enc: Encoded) -> dict:
    """Two differently styled, correctly classified images per class and their reconstructions
    from the predicted softmax and style memory; mean errors for correct vs misclassified inputs."""
    pairs = distinct_style_pairs(enc, model.num_classes)
    order = [i for c in sorted(pairs) for i in pairs[c]]
    idx = torch.tensor(order, dtype=torch.long)
    recon = _decode(model, enc.probs[idx], enc.style[idx])
    wrong = ~enc.correct
    return {
        "indices": idx, "images": enc.x[idx], "reconstructions": recon, "labels": enc.y[idx],
        "errors": recon_error(enc.x[idx], recon),
        "mean_error_all": float(enc.err_pred.mean()),
        "mean_error_correct": float(enc.err_pred[enc.correct].mean()),
        "mean_error_misclassified": float(enc.err_pred[wrong].mean()) if wrong.any() else float("nan"),
        "n": int(len(enc.y)), "n_misclassified": int(wrong.sum()),
    }


def misclassified(model: StyleMemoryNet, enc: Encoded, max_items: int = 16) -> dict:
    """Misclassified images (most confident mistakes first) with their reconstructions under the
    predicted softmax and under the one-hot true label, and how the error changes when the label
    is corrected (over all misclassified images): ``share_error_drops`` compares one-hot labels
    (predicted vs true), the like-for-like comparison; the softmax error is reported beside it."""
    wrong = (~enc.correct).nonzero()[:, 0]
    conf = enc.probs.max(dim=1).values
    shown = wrong[conf[wrong].argsort(descending=True)][:max_items]
    onehot = F.one_hot(enc.y[shown], model.num_classes).float()
    result = {
        "indices": shown, "images": enc.x[shown],
        "recon_pred": _decode(model, enc.probs[shown], enc.style[shown]),
        "recon_true": _decode(model, onehot, enc.style[shown]),
        "pred": enc.pred[shown], "confidence": conf[shown], "labels": enc.y[shown],
        "n_misclassified": int(len(wrong)),
    }
    nan = float("nan")
    if len(wrong):
        ep, eo, et = enc.err_pred[wrong], enc.err_pred_onehot[wrong], enc.err_true[wrong]
        result.update(mean_error_pred=float(ep.mean()), mean_error_pred_onehot=float(eo.mean()),
                      mean_error_true=float(et.mean()), share_error_drops=float((et < eo).float().mean()))
    else:
        result.update(mean_error_pred=nan, mean_error_pred_onehot=nan, mean_error_true=nan, share_error_drops=nan)
    return result


def _knn(features: torch.Tensor, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """k nearest rows of ``features`` for each query index (the query itself excluded), by
    Euclidean distance: (Q, k) indices and distances, nearest first."""
    d = torch.cdist(features[queries].double(), features.double())  # (Q, N)
    d[torch.arange(len(queries)), queries] = float("inf")
    dist, idx = d.topk(k, dim=1, largest=False)  # sorted ascending
    return idx, dist.float()


def neighbours(model: StyleMemoryNet, enc: Encoded, query: int = 0, k: int = 97, n_queries: int = 1000,
               seed: int = 0) -> dict:
    """Nearest neighbours of one query image in image space and in style space (paper Fig. 7/8),
    and the same statistics averaged over ``n_queries`` random queries.

    For each space's neighbour set we report the per-class counts and the mean distance of those
    neighbours to the query measured in *both* spaces (the paper's comparison)."""
    n = len(enc.y)
    if not 0 <= query < n:
        raise ValueError(f"query index {query} is outside the {n} test images")
    k = min(k, n - 1)
    pixels = enc.x.flatten(1)
    spaces = {"image": pixels, "style": enc.style}
    q = torch.tensor([query])
    single = {}
    for name, feats in spaces.items():
        idx, _ = _knn(feats, q, k)
        idx = idx[0]
        single[name] = {
            "indices": idx, "images": enc.x[idx], "labels": enc.y[idx],
            "class_counts": torch.bincount(enc.y[idx], minlength=model.num_classes).tolist(),
            "mean_image_distance": float((pixels[idx] - pixels[query]).norm(dim=1).mean()),
            "mean_style_distance": float((enc.style[idx] - enc.style[query]).norm(dim=1).mean()),
        }
    gen = torch.Generator().manual_seed(seed)
    queries = torch.randperm(n, generator=gen)[:min(n_queries, n)]
    many = {}
    for name, feats in spaces.items():
        same, dimg, dsty = [], [], []
        for chunk in queries.split(250):
            idx, _ = _knn(feats, chunk, k)
            same.append((enc.y[idx] == enc.y[chunk][:, None]).float().mean(dim=1))
            dimg.append((pixels[idx] - pixels[chunk][:, None]).norm(dim=2).mean(dim=1))
            dsty.append((enc.style[idx] - enc.style[chunk][:, None]).norm(dim=2).mean(dim=1))
        many[name] = {"same_class_share": float(torch.cat(same).mean()),
                      "mean_image_distance": float(torch.cat(dimg).mean()),
                      "mean_style_distance": float(torch.cat(dsty).mean())}
    return {"query": query, "query_image": enc.x[query], "query_label": int(enc.y[query]), "k": k,
            "single": single, "n_queries": int(len(queries)), "averaged": many,
            "chance_same_class_share": float((torch.bincount(enc.y, minlength=model.num_classes).float() / n).pow(2).sum())}


def interpolation(model: StyleMemoryNet, enc: Encoded, lambdas: tuple[float, ...] | None = None,
                  transfer_sources: int = 5) -> dict:
    """For each class, two differently styled images; decode the class (one-hot) with style
    lambda * m1 + (1 - lambda) * m2 for lambda = 0.1 ... 1.0. And style transfer: the styles of a
    few images decoded under every class label."""
    lambdas = lambdas or tuple(round(0.1 * i, 1) for i in range(1, 11))
    pairs = distinct_style_pairs(enc, model.num_classes)
    classes = sorted(pairs)
    lam = torch.tensor(lambdas, dtype=torch.float32)
    rows = []
    for c in classes:
        i, j = pairs[c]
        styles = lam[:, None] * enc.style[i] + (1 - lam[:, None]) * enc.style[j]  # (L, D)
        onehot = F.one_hot(torch.full((len(lam),), c), model.num_classes).float()
        rows.append(_decode(model, onehot, styles))
    grid = torch.stack(rows)  # (C', L, 1, S, S)
    sources = [pairs[c][0] for c in classes[:transfer_sources]]
    c_all = model.num_classes
    transfer = torch.stack([
        _decode(model, torch.eye(c_all), enc.style[s].expand(c_all, -1)) for s in sources
    ])  # (sources, C, 1, S, S)
    return {"classes": classes, "pairs": [pairs[c] for c in classes], "lambdas": list(lambdas), "grid": grid,
            "endpoints": torch.stack([torch.stack([enc.x[pairs[c][0]], enc.x[pairs[c][1]]]) for c in classes]),
            "transfer_sources": sources, "transfer_images": enc.x[sources], "transfer": transfer}


def run_experiments(model: StyleMemoryNet, x: torch.Tensor, y: torch.Tensor, names=EXPERIMENTS, *,
                    query: int = 0, k: int = 97, n_queries: int = 1000, seed: int = 0,
                    probe_data: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict:
    """Run the named experiments on (x, y); returns {"accuracy": float, name: result, ...}.
    ``style`` fits its class probe on ``probe_data`` (the validation split), so it needs it."""
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise ValueError(f"unknown experiment(s) {', '.join(unknown)}; use {', '.join(EXPERIMENTS)} or all")
    enc = encode_dataset(model, x, y)
    results: dict = {"accuracy": float(enc.correct.double().mean())}
    if "reconstruction" in names:
        results["reconstruction"] = reconstruction(model, enc)
    if "misclassified" in names:
        results["misclassified"] = misclassified(model, enc)
    if "neighbours" in names:
        results["neighbours"] = neighbours(model, enc, query=query, k=k, n_queries=n_queries, seed=seed)
    if "interpolation" in names:
        results["interpolation"] = interpolation(model, enc)
    if "style" in names:
        if probe_data is None:
            raise ValueError("the style experiment fits its class probe on other images: pass probe_data=(x_val, y_val)")
        from .style_measures import style_measures

        results["style"] = style_measures(model, *probe_data, x, y)
    return results
