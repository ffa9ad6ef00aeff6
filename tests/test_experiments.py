import pytest
import torch
import torch.nn.functional as F

from robustgen.data import load_dataset
from robustgen.evaluation.experiments import (
    encode_dataset,
    interpolation,
    misclassified,
    neighbours,
    reconstruction,
    run_experiments,
)
from robustgen.model import recon_error


@pytest.fixture(scope="module")
def enc(trained_model):
    x, y = load_dataset("mnist", "test", limit=800)
    return encode_dataset(trained_model, x, y, batch_size=300)


def test_reconstruction(trained_model, enc):
    r = reconstruction(trained_model, enc)
    assert r["images"].shape == r["reconstructions"].shape == (20, 1, 28, 28)
    assert r["labels"].tolist() == [c for c in range(10) for _ in range(2)]
    assert torch.equal(enc.pred[r["indices"]], r["labels"])  # only correctly classified images
    assert r["indices"][0::2].ne(r["indices"][1::2]).all()  # two different images per class
    with torch.no_grad():
        again = trained_model.reconstruct(r["images"], "softmax")
    assert torch.allclose(again, r["reconstructions"], atol=1e-5)
    n_wrong = r["n_misclassified"]
    pooled = (r["mean_error_correct"] * (r["n"] - n_wrong) + r["mean_error_misclassified"] * n_wrong) / r["n"]
    assert r["mean_error_all"] == pytest.approx(pooled, rel=1e-5)


def test_misclassified(trained_model, enc):
    r = misclassified(trained_model, enc, max_items=8)
    assert 0 < len(r["indices"]) <= 8 and r["n_misclassified"] == int((~enc.correct).sum())
    assert (r["pred"] != r["labels"]).all()
    assert (r["confidence"][:-1] >= r["confidence"][1:]).all()  # most confident mistakes first
    with torch.no_grad():
        redrawn = trained_model.reconstruct(r["images"], r["labels"])
    assert torch.allclose(redrawn, r["recon_true"], atol=1e-5)
    wrong = ~enc.correct
    assert r["share_error_drops"] == pytest.approx(float((enc.err_true[wrong] < enc.err_pred_onehot[wrong]).float().mean()))
    with torch.no_grad():
        onehot_pred = trained_model.reconstruct(enc.x[wrong], "onehot")
    assert r["mean_error_pred_onehot"] == pytest.approx(float(recon_error(enc.x[wrong], onehot_pred).mean()), rel=1e-4)
    assert r["mean_error_true"] == pytest.approx(float(enc.err_true[wrong].mean()), rel=1e-5)


def test_neighbours_sorted_and_consistent(trained_model, enc):
    r = neighbours(trained_model, enc, query=5, k=97, n_queries=200)
    pixels = enc.x.flatten(1)
    img, sty = r["single"]["image"], r["single"]["style"]
    for space, feats in (("image", pixels), ("style", enc.style)):
        s = r["single"][space]
        assert len(s["indices"]) == 97 and sum(s["class_counts"]) == 97 and 5 not in s["indices"].tolist()
        d = (feats[s["indices"]] - feats[5]).norm(dim=1)
        assert (d[1:] >= d[:-1] - 1e-6).all()  # in order of distance
        outside = torch.ones(len(enc.y), dtype=torch.bool)
        outside[s["indices"]] = False
        outside[5] = False
        assert d.max() <= (feats[outside] - feats[5]).norm(dim=1).min() + 1e-6  # really the nearest
    # each space's own neighbours are the closest in that space
    assert img["mean_image_distance"] <= sty["mean_image_distance"]
    assert sty["mean_style_distance"] <= img["mean_style_distance"]
    avg = r["averaged"]
    assert r["n_queries"] == 200 and 0 <= avg["style"]["same_class_share"] <= 1
    assert avg["image"]["mean_image_distance"] <= avg["style"]["mean_image_distance"]
    assert 0.09 < r["chance_same_class_share"] < 0.11
    with pytest.raises(ValueError, match="outside"):
        neighbours(trained_model, enc, query=10_000)


def test_interpolation_endpoints(trained_model, enc):
    r = interpolation(trained_model, enc)
    assert r["lambdas"] == pytest.approx([0.1 * i for i in range(1, 11)])
    assert r["grid"].shape == (10, 10, 1, 28, 28) and r["transfer"].shape == (5, 10, 1, 28, 28)
    with torch.no_grad():
        for row, c in enumerate(r["classes"][:3]):
            i, j = r["pairs"][row]
            onehot = F.one_hot(torch.tensor([c]), 10).float()
            m1 = trained_model.decode(onehot, enc.style[i][None])
            m2 = trained_model.decode(onehot, enc.style[j][None])
            assert torch.allclose(r["grid"][row, -1], m1[0], atol=1e-5)  # lambda = 1 gives m1's decode
            assert recon_error(r["grid"][row, 0][None], m2) < recon_error(r["grid"][row, -1][None], m2)
        s = r["transfer_sources"][0]
        again = trained_model.decode(torch.eye(10), enc.style[s].expand(10, -1))
    assert torch.allclose(r["transfer"][0], again, atol=1e-5)


def test_run_experiments_rejects_unknown(trained_model):
    x, y = load_dataset("mnist", "test", limit=50)
    with pytest.raises(ValueError, match="unknown experiment"):
        run_experiments(trained_model, x, y, ["reconstruction", "dreams"])
