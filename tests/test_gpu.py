"""CUDA checks, skipped by default (``pytest -m gpu`` on a machine with a GPU): the CUDA-graph step
must train exactly like the eager step, with and without the adversary's inner attack captured."""

import pytest
import torch
from conftest import tiny_config

from robustgen.config import AdversaryConfig
from robustgen.steps import make_optimizer
from robustgen.train import build_model, fit

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.mark.parametrize("adversary", ["none", "pgd", "trades"])
def test_cuda_graph_step_matches_eager_step(mnist_small, adversary):
    (x, y), (xv, yv) = mnist_small
    dev = torch.device("cuda")
    weights = {}
    for graph in (False, True):
        torch.manual_seed(0)
        # no noise, shifts or random start: both paths then see exactly the same batches
        cfg = tiny_config(epochs=1, lr=1e-3, noise_std=0.0, cuda_graph=str(graph).lower())
        cfg.adversary = AdversaryConfig(method=adversary, eps=0.3, steps=3, random_start=False, ramp_epochs=0)
        model = build_model(cfg, 10).to(dev)
        opt = make_optimizer(model, cfg.train.lr, 0.0, dev, graph)
        fit(model, opt, cfg, (x.to(dev), y.to(dev)), (xv.to(dev), yv.to(dev)))
        weights[graph] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    for k in weights[False]:
        assert torch.allclose(weights[False][k], weights[True][k], atol=1e-4, rtol=1e-3), k
