import subprocess
import sys

import numpy as np
import torch

from robustgen import ReconstructionDetector, load_dataset, load_model
from robustgen.attacks import make_attack, run_attack
from robustgen.evaluation.metrics import auroc


def test_import_robustgen_does_not_import_art_or_the_heavy_libraries():
    """ART is optional; scikit-learn, scipy, pandas, matplotlib and torchattacks are imported where a
    command uses them (scikit-learn alone added 1.7 s to every `robustgen` start-up)."""
    libs = ["art", "sklearn", "scipy", "pandas", "matplotlib", "torchattacks"]
    code = f"import sys, robustgen, robustgen.cli; print([m for m in {libs} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_art_pgd_through_the_adapter_is_scored_like_robustgen_pgd():
    from art.attacks.evasion import ProjectedGradientDescent

    from robustgen.detectors.interop import ARTDetector, to_art_classifier

    model = load_model("fast-mnist")
    x_val, _ = load_dataset("mnist", "val", limit=2000)
    x, y = load_dataset("mnist", "test", limit=250)
    art_det = ARTDetector(ReconstructionDetector(model, "recon"))
    art_det.fit(x_val.numpy(), nb_epochs=1)
    assert art_det.detector.threshold is not None and art_det.get_params() == {"fpr": 0.05}
    classifier = to_art_classifier(model)
    assert classifier.nb_classes == 10 and classifier.clip_values is not None
    attack = ProjectedGradientDescent(classifier, norm=np.inf, eps=0.1, eps_step=0.01, max_iter=20,
                                      num_random_init=1, batch_size=500, verbose=False)
    np.random.seed(0)
    x_art = attack.generate(x.numpy(), y=y.numpy())
    assert np.abs(x_art - x.numpy()).max() <= 0.1 + 1e-6
    torch.manual_seed(0)
    x_ours = run_attack(make_attack("pgd", model, 0.1, steps=20), x, y)
    det = art_det.detector
    clean = det.score(x)
    a_art, a_ours = auroc(clean, det.score(x_art)), auroc(clean, det.score(x_ours))
    assert abs(a_art - a_ours) <= 0.02, (a_art, a_ours)
    report, flagged = art_det.detect(x_art)
    assert flagged.dtype == bool and flagged.shape == (250,)
    assert np.array_equal(flagged, report["scores"] > report["threshold"])


def test_art_security_curve_runs_on_the_wrapped_classifier():
    from art.evaluations.security_curve import SecurityCurve

    from robustgen.detectors.interop import to_art_classifier

    model = load_model("robust-mnist")
    x, y = load_dataset("mnist", "test", limit=100)
    curve = SecurityCurve(eps=[0.1, 0.3, 0.5])
    eps, acc_adv, acc = curve.evaluate(to_art_classifier(model), x.numpy(), np.eye(10)[y.numpy()],
                                       eps_step=0.05, max_iter=10, batch_size=100, verbose=False)
    assert eps == [0.1, 0.3, 0.5] and acc >= 0.97
    assert acc_adv[0] >= acc_adv[1] >= acc_adv[2] and acc_adv[0] > 0.9 and acc_adv[2] < 0.5
    assert curve.detected_obfuscating_gradients is False  # PGD at eps 1 breaks it: no masked gradients
