import numpy as np
import pytest
import torch

from robustgen import GuardedClassifier, ReconstructionDetector, load_model
from robustgen.attacks import (
    GRADIENT_FREE,
    REGISTRY,
    Attack,
    AttackCheckError,
    default_budget,
    make_attack,
    parse_eps,
    parse_eps_list,
    run_attack,
)
from robustgen.attacks.base import bfloat16_passes, cascade
from robustgen.attacks.orthogonal_pgd import OrthogonalPGD
from robustgen.attacks.selective_pgd import SelectivePGD, orthogonalize
from robustgen.evaluation.metrics import detection_row


def test_parse_eps_list_reads_ranges():
    assert parse_eps_list("0:0.4:0.05") == pytest.approx([0.05 * k for k in range(1, 9)])
    assert parse_eps_list("0.3, 0.1,0.1,8/255") == pytest.approx([8 / 255, 0.1, 0.3])
    assert len(parse_eps_list("0:1:0.01")) == 100  # the most one range may give
    for bad in ("0.4:0:0.1", "0:0.4:0", "0:0.4", "a:b:c", "0:0:0.1", "0:1:1e-12"):
        with pytest.raises(ValueError):
            parse_eps_list(bad)
    for outside in ("-1:0.3:0.1", "-0.1:0.2:0.1", "0.5:1.5:0.5", "0.1,-1:0.3:0.1"):  # refused whole, never trimmed
        with pytest.raises(ValueError, match="reaches outside"):
            parse_eps_list(outside)


def test_parse_eps():
    assert parse_eps("8/255") == pytest.approx(8 / 255)
    assert parse_eps("0.3") == 0.3 and parse_eps(0.1) == 0.1
    for bad in ("abc", "0", "1.5", "-0.1", "1/0"):
        with pytest.raises(ValueError):
            parse_eps(bad)


@pytest.mark.parametrize("broken, message", [
    (lambda x, y: (x + 0.5).clamp(0, 1), "exceeds eps"),
    (lambda x, y: x + 0.05, r"\[0, 1\] pixel range"),
    (lambda x, y: x * float("nan"), "NaN"),
    (lambda x, y: x[:, :, :14], "shape"),
])
def test_checks_catch_a_broken_attack(broken, message):
    x = torch.rand(4, 1, 28, 28) * 0.8 + 0.2  # max above 0.95, so +0.05 leaves [0, 1]
    attack = Attack("broken", 0.1, broken, False, 1)
    with pytest.raises(AttackCheckError, match=message):
        run_attack(attack, x, torch.zeros(4, dtype=torch.long))


@pytest.mark.parametrize("name", ["fgsm", "bim", "pgd"])
def test_oblivious_attacks_stay_in_the_ball_and_hurt(trained_model, mnist_small, name):
    torch.manual_seed(0)
    x, y = mnist_small[1][0][:100], mnist_small[1][1][:100]
    x_adv = run_attack(make_attack(name, trained_model, 0.2, steps=10, step_size=0.05), x, y)
    assert (x_adv - x).abs().max() <= 0.2 + 1e-6
    with torch.no_grad():
        clean = (trained_model(x).argmax(1) == y).float().mean()
        robust = (trained_model(x_adv).argmax(1) == y).float().mean()
    assert robust < clean - 0.3


def undetected_success(model, det, x, y, x_adv) -> float:
    """Share of inputs the attack flipped without the detector flagging them."""
    assert (x_adv - x).abs().max() <= 0.3 + 1e-6
    with torch.no_grad():
        pc, pa = model(x).argmax(1).numpy(), model(x_adv).argmax(1).numpy()
    row = detection_row(y=y.numpy(), pred_clean=pc, pred_adv=pa, s_clean=det.score(x), s_adv=det.score(x_adv),
                        thresholds={0.05: det.threshold}, fpr=0.05)
    return row["undetected_success_rate"]


@pytest.fixture(scope="module")
def fast_mnist():
    """The shipped clean model: its reconstruction error catches nearly every oblivious PGD example
    at eps 0.3 (reports/fast-mnist), the detector a detector-aware attack has to get past."""
    return load_model("fast-mnist")


def test_adaptive_pgd_evades_at_least_as_often_as_pgd(fast_mnist, mnist_small):
    torch.manual_seed(0)
    (xv, _), (x, y) = (mnist_small[1][0][:500], None), (mnist_small[1][0][500:700], mnist_small[1][1][500:700])
    det = ReconstructionDetector(fast_mnist, "recon").fit(xv, fpr=0.05)
    kw = {"steps": 15, "step_size": 0.03}
    outcome = {}
    for name in ("pgd", "adaptive-pgd"):
        atk = make_attack(name, fast_mnist, 0.3, detector=det, search_steps=3, **kw)
        outcome[name] = undetected_success(fast_mnist, det, x, y, run_attack(atk, x, y, batch_size=100))
    assert outcome["adaptive-pgd"] >= outcome["pgd"] + 0.2  # measured: 0.0 -> 0.91


@pytest.mark.parametrize("name", ["adaptive-pgd", "selective-pgd", "orthogonal-pgd", "guarded-apgd"])
def test_detector_aware_attacks_need_a_fitted_detector(trained_model, name):
    with pytest.raises(ValueError, match="fitted Detector"):
        make_attack(name, trained_model, 0.3)


def test_unknown_attacks_and_budgets_are_refused(trained_model):
    with pytest.raises(ValueError, match="unknown attack 'cw'"):
        make_attack("cw", trained_model, 0.3)
    with pytest.raises(ValueError, match="steps must be a whole number of at least 1"):
        make_attack("pgd", trained_model, 0.3, steps=0)
    with pytest.raises(ValueError, match="queries must be a whole number of at least 1"):
        make_attack("square", trained_model, 0.3, queries=0)
    with pytest.raises(ValueError, match="search_steps must be a whole number of at least 1"):
        make_attack("pgd", trained_model, 0.3, search_steps=0)
    with pytest.raises(ValueError, match="step_size must be a positive finite number"):
        make_attack("pgd", trained_model, 0.3, step_size=float("nan"))


def test_bfloat16_attacks_run_their_passes_in_bfloat16_and_hand_back_float32_images(trained_model, mnist_small):
    x, y = mnist_small[1][0][:32], mnist_small[1][1][:32]
    seen, adv = [], {}
    hook = trained_model.enc_top.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    try:
        for precision in ("float32", "bfloat16"):
            seen.clear()
            attack = make_attack("pgd", trained_model, 0.3, steps=3, precision=precision)
            adv[precision] = run_attack(attack, x, y, seed=0)
            assert adv[precision].dtype == torch.float32
            assert set(seen) == {getattr(torch, precision)}  # every pass of the attack in that arithmetic
    finally:
        hook.remove()
    assert attack.budget.endswith("bfloat16 passes")  # the report says how it ran
    assert not torch.equal(adv["float32"], adv["bfloat16"])
    assert not any(p.dtype != torch.float32 for p in trained_model.parameters())  # the model is left as it was
    with pytest.raises(ValueError, match="precision must be one of float32, bfloat16, got 'float16'"):
        make_attack("pgd", trained_model, 0.3, precision="float16")


def test_a_gradient_free_attack_keeps_float32_passes_when_bfloat16_is_asked(trained_model, mnist_small):
    """Square's random search keeps a candidate when the margin falls at all: below bfloat16's resolution
    (measured: 5.7 points of robust accuracy given away on Fashion-MNIST), so its passes stay float32."""
    x, y = mnist_small[1][0][:8], mnist_small[1][1][:8]
    seen = []
    hook = trained_model.enc_top.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    try:
        attack = make_attack("square", trained_model, 0.3, queries=5, precision="bfloat16")
        run_attack(attack, x, y, seed=0)
    finally:
        hook.remove()
    assert attack.precision == "float32" and set(seen) == {torch.float32}
    assert attack.budget.endswith("float32 passes (gradient-free: not bfloat16)")  # the report says so


def test_autoattack_keeps_its_square_in_float32_under_bfloat16(trained_model, mnist_small, monkeypatch):
    """The same reason inside AutoAttack: its gradient attacks run in bfloat16, its Square in float32."""
    from robustgen.attacks import square

    x, y = mnist_small[1][0][:8], mnist_small[1][1][:8]
    phase, seen = ["gradient"], {"gradient": set(), "square": set()}
    real_make = square.make

    def recording_make(model, eps, queries):
        inner = real_make(model, eps, 5)

        def call(xs, ys):
            phase[0] = "square"
            try:
                return inner(xs, ys)
            finally:
                phase[0] = "gradient"  # the cascade's own check of what Square found runs in bfloat16
        return call

    monkeypatch.setattr(square, "make", recording_make)
    hook = trained_model.enc_top.register_forward_hook(lambda m, i, o: seen[phase[0]].add(o.dtype))
    try:
        attack = make_attack("autoattack", trained_model, 0.001, steps=1, precision="bfloat16")
        run_attack(attack, x, y, seed=0)
    finally:
        hook.remove()
    assert seen["gradient"] == {torch.bfloat16}  # APGD-CE, APGD-T, FAB-T and the cascade's checks
    assert seen["square"] == {torch.float32}  # reached (eps 0.001 breaks nothing first) and in float32
    assert attack.budget.endswith("bfloat16 passes (Square float32)")


def test_bfloat16_passes_hand_the_attack_float32_outputs(trained_model, mnist_small):
    """torchattacks' APGD-T (AutoAttack's second attack) turns its loss into numpy, which has no
    bfloat16: the model's outputs must come back float32 while its layers compute in bfloat16."""
    import torchattacks

    x, y = mnist_small[1][0][:16], mnist_small[1][1][:16]
    inner, outer = [], []
    hooks = [trained_model.enc_top.register_forward_hook(lambda m, i, o: inner.append(o.dtype))]
    apgdt = torchattacks.APGDT(trained_model, eps=0.3, steps=2, n_classes=10)
    attack = Attack("apgd-t", 0.3, apgdt, False, 2, trained_model, "2 steps", precision="bfloat16")
    try:
        adv = run_attack(attack, x, y, seed=0)
        with bfloat16_passes("cpu"):
            outer.append(trained_model(x).dtype)
    finally:
        for h in hooks:
            h.remove()
    assert adv.dtype == torch.float32 and set(inner) == {torch.bfloat16} and outer == [torch.float32]


@pytest.mark.parametrize("bad, words", [
    (lambda x, y: (x * 255, y, 500), "images must lie in \\[0, 1\\], found values in \\[0, 255\\]"),
    (lambda x, y: (x.masked_fill(x > 0.5, float("nan")), y, 500), "images contain NaN or infinite values"),
    (lambda x, y: (x[:, 0], y, 500), "x must be a float tensor \\(N, C, H, W\\)"),
    (lambda x, y: ((x * 255).to(torch.uint8), y, 500), "x must be a float tensor"),
    (lambda x, y: (x, y[:-1], 500), "one integer label per image"),
    (lambda x, y: (x, y.float(), 500), "one integer label per image"),
    (lambda x, y: (x, y, 0), "batch_size must be a whole number of at least 1"),
])
def test_run_attack_refuses_bad_inputs_before_attacking(trained_model, mnist_small, bad, words):
    x, y = mnist_small[1][0][:8], mnist_small[1][1][:8]
    calls = []
    attack = make_attack("fgsm", trained_model, 0.1)
    attack.fn = lambda xb, yb: calls.append(1) or xb
    with pytest.raises(ValueError, match=words):
        run_attack(attack, *bad(x, y))
    assert not calls  # refused before any batch was attacked


def test_every_registered_attack_has_a_paper_and_a_budget():
    for name, (module, _, _) in REGISTRY.items():
        doc = module.__doc__
        assert doc and any(str(year) in doc.split("\n\n")[0] for year in range(2014, 2023)), name
        if name == "fgsm":
            with pytest.raises(ValueError, match="not iterative"):
                default_budget(name)
            continue
        key, value = default_budget(name)  # what the doubled-steps sanity check doubles
        assert key == ("queries" if name in GRADIENT_FREE else "steps") and value >= 40, name


def test_orthogonal_projection_makes_the_gradients_orthogonal_before_the_sign():
    torch.manual_seed(0)
    g_cls, g_det = torch.randn(6, 1, 28, 28), torch.randn(6, 1, 28, 28)
    g_det[0] = 2.0 * g_cls[0] + 0.1 * g_det[0]  # nearly parallel: the projection must still work
    success = torch.tensor([False, False, False, True, True, True])
    dot = lambda a, b: (a.flatten(1) * b.flatten(1)).sum(1)  # noqa: E731
    d = OrthogonalPGD.direction(OrthogonalPGD.__new__(OrthogonalPGD), g_cls, g_det, success)
    # not yet misclassified: the classifier step has no component along the detector gradient
    assert dot(d[:3], g_det[:3]).abs().max() < 1e-3 * dot(g_det[:3], g_det[:3]).sqrt().max()
    # misclassified: the detector step has no component along the classifier gradient
    assert dot(d[3:], g_cls[3:]).abs().max() < 1e-3 * dot(g_cls[3:], g_cls[3:]).sqrt().max()
    expected = g_cls - (dot(g_cls, g_det) / dot(g_det, g_det))[:, None, None, None] * g_det
    assert torch.allclose(orthogonalize(g_cls, g_det), expected, atol=1e-5)
    # exactly collinear (the confidence score's gradient while the true class is the top one): nothing is
    # orthogonal to it, so the gradient is kept whole instead of stepping along the sign of rounding noise
    assert torch.equal(orthogonalize(g_cls[:2], -3.0 * g_cls[:2]), g_cls[:2])
    # the selective variant does not project: it takes each gradient as it is
    plain = SelectivePGD.direction(SelectivePGD.__new__(SelectivePGD), g_cls, g_det, success)
    assert torch.equal(plain[:3], g_cls[:3]) and torch.equal(plain[3:], g_det[3:])


def test_cascade_keeps_each_inputs_first_misclassifying_example():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]))  # class = larger of pixels 0 and 1
    x = torch.tensor([[0.6, 0.4, 0, 0], [0.6, 0.4, 0, 0], [0.9, 0.1, 0, 0]]).view(3, 1, 2, 2)
    y = torch.zeros(3, dtype=torch.long)
    calls = []

    def push(xb, yb):  # moves 0.15 from pixel 0 to pixel 1: breaks inputs 0 and 1, not input 2
        calls.append(len(xb))
        out = xb.clone()
        out[:, 0, 0, 0] -= 0.15
        out[:, 0, 0, 1] += 0.15
        return out

    adv = cascade([push, push], model, x, y)
    assert calls == [3, 1]  # the second attack only sees the input the first did not break
    assert torch.allclose(adv[0, 0, 0], torch.tensor([0.45, 0.55]))  # first misclassifying example kept
    assert torch.allclose(adv[2, 0, 0], torch.tensor([0.75, 0.25]))  # never broken: the last attack's output


def test_selective_and_orthogonal_pgd_evade_more_than_pgd(fast_mnist, mnist_small):
    xv, (x, y) = mnist_small[1][0][:500], (mnist_small[1][0][500:620], mnist_small[1][1][500:620])
    det = ReconstructionDetector(fast_mnist, "recon").fit(xv, fpr=0.05)
    kw = {"steps": 20, "step_size": 0.03}
    outcome = {}
    for name in ("pgd", "selective-pgd", "orthogonal-pgd"):
        torch.manual_seed(0)
        atk = make_attack(name, fast_mnist, 0.3, detector=det, targets="untargeted", **kw)
        outcome[name] = undetected_success(fast_mnist, det, x, y, run_attack(atk, x, y, batch_size=60))
    assert outcome["selective-pgd"] >= outcome["pgd"] + 0.2, outcome
    assert outcome["orthogonal-pgd"] >= outcome["pgd"] + 0.2, outcome


def test_targeted_runs_only_add_to_the_untargeted_one(fast_mnist, mnist_small):
    xv, (x, y) = mnist_small[1][0][:500], (mnist_small[1][0][500:560], mnist_small[1][1][500:560])
    det = ReconstructionDetector(fast_mnist, "recon").fit(xv, fpr=0.05)
    broken = {}
    for targets in ("untargeted", "all"):
        torch.manual_seed(0)
        atk = make_attack("orthogonal-pgd", fast_mnist, 0.15, detector=det, targets=targets, steps=10, step_size=0.03)
        x_adv = run_attack(atk, x, y)
        with torch.no_grad():
            mis = fast_mnist(x_adv).argmax(1) != y
        broken[targets] = int((mis & torch.as_tensor(det.score(x_adv) <= det.threshold)).sum())
    assert broken["all"] > broken["untargeted"], broken  # the targeted runs break inputs the untargeted one missed (34 -> 44)


@pytest.mark.parametrize("name, kw", [("apgd", {"steps": 20}), ("square", {"queries": 300}),
                                      ("autoattack", {"steps": 5})])
def test_stronger_oblivious_attacks_break_the_clean_model(trained_model, mnist_small, name, kw):
    x, y = mnist_small[1][0][:60], mnist_small[1][1][:60]
    torch.manual_seed(0)
    x_adv = run_attack(make_attack(name, trained_model, 0.3, **kw), x, y)
    with torch.no_grad():
        clean = float((trained_model(x).argmax(1) == y).float().mean())
        robust = float((trained_model(x_adv).argmax(1) == y).float().mean())
    assert robust < clean - 0.5, (clean, robust)


def test_guarded_apgd_attacks_classifier_and_detector_together(trained_model, mnist_small):
    xv, (x, y) = mnist_small[1][0][:500], (mnist_small[1][0][500:560], mnist_small[1][1][500:560])
    det = ReconstructionDetector(trained_model, "recon").fit(xv, fpr=0.05)
    torch.manual_seed(0)
    x_adv = run_attack(make_attack("guarded-apgd", trained_model, 0.3, detector=det, steps=20), x, y)
    guarded = GuardedClassifier(trained_model, det)
    assert (x_adv - x).abs().max() <= 0.3 + 1e-6
    # most inputs end misclassified *and* unflagged: the attack did not just push them into rejection
    assert float((~guarded.robust(x_adv, y)).float().mean()) > 0.5


class _FlippingScorer:
    """Flags input 0 only in batches of 4 (``by="size"``) or only on every other call (``by="call"``):
    a score on the threshold, as a real one can sit, computed in another batch or another pass."""

    def __init__(self, by: str):
        self.by, self.calls = by, 0

    def evaluate(self, model, x):
        self.calls += 1
        flag = x.shape[0] == 4 if self.by == "size" else self.calls % 2 == 1
        scores = torch.full((x.shape[0],), -10.0)
        scores[0] = 10.0 if flag else -10.0
        return scores, model(x)


@pytest.mark.parametrize("by", ["size", "call"])
def test_guarded_apgd_follows_the_sub_batch_apgd_keeps(by):
    from types import SimpleNamespace

    from robustgen.attacks.guarded_apgd import GuardedAPGD

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))  # APGD-DLR needs 3 classes
    with torch.no_grad():
        model[1].weight.copy_(torch.eye(3, 4))
        model[1].bias.zero_()
    model.num_classes = 3
    det = SimpleNamespace(model=model, scorer=_FlippingScorer(by), threshold=0.5, score_scale=1.0)
    # inputs 0 and 3 are misclassified; 0 is flagged in the first call (on the whole batch), 3 never
    x = torch.tensor([[0.1, 0.9, 0, 0], [0.9, 0.1, 0, 0], [0.1, 0.9, 0, 0], [0.2, 0.8, 0, 0]]).view(4, 1, 2, 2)
    y = torch.tensor([0, 0, 1, 0])
    torch.manual_seed(0)
    x_adv = GuardedAPGD(det, 0.05, steps=3)(x, y)  # raised in MergedView: APGD kept a sub-batch of 2
    assert (x_adv - x).abs().max() <= 0.05 + 1e-6
    assert torch.equal(x_adv[0], x[0])  # broken as APGD sees it: left alone, not attacked


def test_guarded_apgd_leaves_the_model_in_eval_mode(trained_model, mnist_small):
    xv, (x, y) = mnist_small[1][0][:200], (mnist_small[1][0][500:508], mnist_small[1][1][500:508])
    det = ReconstructionDetector(trained_model, "recon").fit(xv, fpr=0.05)
    trained_model.eval()
    make_attack("guarded-apgd", trained_model, 0.1, detector=det, steps=2).fn(x, y)
    assert not any(m.training for m in trained_model.modules())  # torchattacks' train() reached it


@pytest.mark.parametrize("name, kw", [("apgd", {"steps": 3}), ("square", {"queries": 20}),
                                      ("autoattack", {"steps": 1})])
def test_seed_reaches_torchattacks_and_the_global_rng_is_left_alone(trained_model, mnist_small, name, kw):
    x, y = mnist_small[1][0][:16], mnist_small[1][1][:16]
    atk = make_attack(name, trained_model, 0.3, **kw)
    a, b, a2 = (run_attack(atk, x, y, seed=s) for s in (1, 2, 1))
    assert torch.equal(a, a2) and not torch.equal(a, b)  # --seed changes the run, and repeats it
    after = []
    for s in (1, 2):  # torchattacks re-seeded the global RNG with its own seed inside every call
        torch.manual_seed(s)
        atk(x, y)
        after.append(torch.rand(5))
    assert not torch.equal(*after)


def test_torchrun_shards_share_out_the_batches(monkeypatch, trained_model, mnist_small):
    import robustgen.distributed as dist

    x, y = mnist_small[1][0][:50], mnist_small[1][1][:50]
    seen = {}
    for rank in (0, 1):
        calls = []
        atk = make_attack("fgsm", trained_model, 0.1)
        inner = atk.fn
        atk.fn = lambda xb, yb, inner=inner, calls=calls: (calls.append(len(xb)), inner(xb, yb))[1]
        monkeypatch.setattr(dist, "world", lambda rank=rank: (rank, 2))
        monkeypatch.setattr(dist, "gather_batches", lambda mine, n, bs: torch.cat(list(mine.values())))
        run_attack(atk, x, y, batch_size=16)
        seen[rank] = (dist.my_batches(50, 16), calls)
    assert seen[0][0] == [0, 32] and seen[1][0] == [16, 48]  # disjoint, together every batch
    assert seen[0][1] == [16, 16] and seen[1][1] == [16, 2]  # each rank attacked only its own batches


def test_guarded_square_needs_no_gradient_and_judges_by_the_real_score(trained_model, mnist_small):
    """Gradient-free: through a score whose gradient is zero everywhere it still breaks inputs, every
    one it reports broken is misclassified and not flagged by the real score, and it stays in the ball."""
    from robustgen import Detector

    xv, (x, y) = mnist_small[1][0][:500], (mnist_small[1][0][500:540], mnist_small[1][1][500:540])

    def quantised(images):  # 1 - max softmax on a grid of 0.05: a step function, no usable gradient
        return (1 - trained_model(images).softmax(1).max(1).values).mul(20).round().div(20)

    det = Detector.from_function(trained_model, quantised, "quantised").fit(xv, fpr=0.2)
    atk = make_attack("guarded-square", trained_model, 0.3, detector=det, queries=300)
    x_adv = run_attack(atk, x, y, seed=0)
    assert (x_adv - x).abs().max() <= 0.3 + 1e-6
    with torch.no_grad():
        broken = (trained_model(x_adv).argmax(1) != y).numpy() & (det.score(x_adv) <= det.threshold)
    _, flags = atk.fn.loss(x_adv, y)
    assert np.array_equal(flags.numpy(), broken) and broken.mean() >= 0.25
