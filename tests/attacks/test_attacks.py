"""Attacks: one contract test over the registry, then each paper's update rule."""

from __future__ import annotations

import pytest
import torch

from tiny_models import BoxViewRecognizer, TinyClassifier, TinyRecognizer, face_batch
from vdeid.attacks import (
    BIM,
    IFGSM,
    IFGVM,
    ILLC,
    PFGVM,
    CrossEntropyObjective,
    DodgeObjective,
    EnsembleObjective,
    ImpersonateObjective,
    KAnonymity,
    KAnonymityObjective,
    Objective,
    create_attack,
    kurakin_steps,
    list_attacks,
)
from vdeid.errors import ShapeError, VdeidError


class Quadratic(Objective):
    """loss = 0.5 ||x - target||² per sample; done when closer than ``tol`` (RMS)."""

    def __init__(self, target: torch.Tensor, tol: float = -1.0):
        self.target = target
        self.tol = tol

    def __call__(self, images, index):
        diff = images - self.target[index]
        loss = 0.5 * diff.flatten(1).square().sum(1)
        rms = diff.flatten(1).square().mean(1).sqrt()
        return loss, rms.detach() < self.tol


def _objective_for(name: str, seed: int = 0):
    """(objective, images, score(images) -> per-sample figure that must grow)."""
    if name in ("illc", "kanon"):
        head = TinyClassifier(classes=6, seed=seed)
        g = torch.Generator().manual_seed(seed)
        x = torch.rand(4, 3, 16, 16, generator=g) * 0.6 + 0.2
        if name == "illc":
            obj = CrossEntropyObjective(head, mode="least_likely")
        else:
            obj = KAnonymityObjective(head, k=3)
        obj.prepare(x)

        def score(images, obj=obj):
            return -obj(images, torch.arange(len(images)))[0].detach()

        return obj, x, score
    rec = TinyRecognizer(seed=seed, threshold=0.1)
    x, lm = face_batch(3, size=40, seed=seed)
    obj = DodgeObjective(rec, lm, margin=0.02)
    obj.prepare(x)
    return obj, x, lambda images, obj=obj: obj.score(images, torch.arange(len(images)))


@pytest.mark.parametrize("name", ["pfgvm", "ifgvm", "ifgsm", "bim", "illc", "kanon"])
def test_attack_contract(name):
    """Every registered attack: [0, 1] output, within eps, objective improves, bookkeeping consistent."""
    assert name in list_attacks()
    obj, x, score = _objective_for(name)
    kwargs = {"steps": 12}
    if name in ("pfgvm", "ifgvm"):
        kwargs["calibrate"] = True
        kwargs["alpha"] = 2.0
    if name in ("bim", "illc"):
        kwargs["eps"] = 16.0
    if name == "ifgsm":
        kwargs.update(eps=0.06, alpha=0.01)
    attack = create_attack(name, obj, **kwargs)
    before = score(x)
    result = attack(x)
    adv = result.images
    assert adv.shape == x.shape
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0
    eps = getattr(attack, "eps", None)
    if eps is not None:
        assert float((adv - x).abs().max()) <= eps + 1e-6
    assert (adv - x).abs().max() > 0
    after = score(adv)
    assert bool((after > before).all()), (before, after)
    assert bool((result.iterations <= attack.steps).all())
    # The done mask describes the returned images.
    with torch.no_grad():
        _, ok = obj(adv, torch.arange(len(adv)))
    assert torch.equal(ok, result.done)
    assert name in repr(attack).lower() or type(attack).__name__ in repr(attack)


def test_pfgvm_update_formula_on_quadratic_loss():
    """x_{i+1} = clip(x_i - alpha (grad + lam (x_i - x))) with grad = x_i - t, by hand."""
    x = torch.full((1, 3, 2, 2), 0.5)
    t = torch.full((1, 3, 2, 2), 0.9)
    t[..., 0, 0] = 0.0
    alpha, lam = 0.5, 0.2
    result = PFGVM(Quadratic(t), alpha=alpha, lam=lam, steps=2, early_stop=False)(x)
    x1 = (x - alpha * ((x - t) + lam * (x - x))).clamp(0, 1)  # = 0.7 / 0.25
    x2 = (x1 - alpha * ((x1 - t) + lam * (x1 - x))).clamp(0, 1)
    assert torch.allclose(x1[0, 0, 1, 1], torch.tensor(0.7))
    assert torch.allclose(x2[0, 0, 1, 1], torch.tensor(0.7 - 0.5 * (-0.2 + 0.2 * 0.2)))
    assert torch.allclose(result.images, x2, atol=1e-6)
    assert result.iterations.tolist() == [2]


def test_pfgvm_penalty_pulls_back_towards_the_original():
    """With a large lam the fixed point sits closer to x than without it."""
    x = torch.full((1, 3, 2, 2), 0.5)
    t = torch.full((1, 3, 2, 2), 1.0)
    free = PFGVM(Quadratic(t), alpha=0.5, lam=0.0, steps=30, early_stop=False)(x).images
    held = PFGVM(Quadratic(t), alpha=0.5, lam=1.0, steps=30, early_stop=False)(x).images
    # Fixed point of the penalised update: x + (t - x) / (1 + lam).
    assert torch.allclose(held, torch.full_like(x, 0.75), atol=1e-3)
    assert torch.allclose(free, t, atol=1e-3)


def test_pfgvm_noise_start_is_seeded():
    x = torch.full((1, 3, 4, 4), 0.5)
    t = torch.full((1, 3, 4, 4), 0.5)
    a = PFGVM(Quadratic(t), start="noise", steps=0, seed=3)(x).images
    b = PFGVM(Quadratic(t), start="noise", steps=0, seed=3)(x).images
    assert torch.equal(a, b) and not torch.equal(a, x)
    with pytest.raises(VdeidError):
        PFGVM(Quadratic(t), start="zeros")


def test_ifgvm_and_ifgsm_clip_to_eps():
    x = torch.full((1, 3, 2, 2), 0.5)
    t = torch.full((1, 3, 2, 2), 1.0)
    v = IFGVM(Quadratic(t), eps=0.03, alpha=0.01, steps=1, early_stop=False)(x).images
    assert torch.allclose(v, x + 0.01 * 0.5)  # one value step: alpha * (t - x)
    v = IFGVM(Quadratic(t), eps=0.03, alpha=1.0, steps=5, early_stop=False)(x).images
    assert torch.allclose(v, x + 0.03)
    s = IFGSM(Quadratic(t), eps=0.026, steps=20, early_stop=False)
    assert s.alpha == pytest.approx(0.026 / 20)  # Table 2: alpha = eps / N
    assert torch.allclose(s(x).images, x + 0.026, atol=1e-6)


def test_calibration_sets_the_first_step_to_alpha_grey_levels():
    x = torch.full((2, 3, 4, 4), 0.5)
    t = x.clone()
    t[0] += 0.4
    t[1] += 0.01  # a 40x smaller gradient
    result = IFGVM(Quadratic(t), eps=1.0, alpha=3.0, steps=1, early_stop=False, calibrate=True)(x)
    step = (result.images - x).flatten(1).square().mean(1).sqrt()
    assert torch.allclose(step, torch.full((2,), 3.0 / 255), rtol=1e-4)


def test_early_stop_freezes_finished_samples():
    x = torch.full((2, 3, 2, 2), 0.5)
    t = torch.stack([torch.full((3, 2, 2), 0.55), torch.full((3, 2, 2), 1.0)])
    result = IFGVM(Quadratic(t, tol=0.02), eps=1.0, alpha=0.5, steps=20)(x)
    assert result.done.tolist() == [True, True]
    assert result.iterations[0] < result.iterations[1]
    # The second sample's budget caps it.
    capped = IFGVM(Quadratic(t, tol=0.02), eps=1.0, alpha=0.5, steps=20)(x, budget=torch.tensor([20, 2]))
    assert capped.iterations.tolist()[1] == 2 and not bool(capped.done[1])


def test_levels_round_and_judge_the_written_values():
    rec = TinyRecognizer(threshold=0.1)
    x, lm = face_batch(2, size=40)
    x = torch.round(x * 255) / 255
    obj = DodgeObjective(rec, lm, margin=0.02)
    result = PFGVM(obj, alpha=2.0, steps=10, levels=255, calibrate=True)(x)
    codes = result.images * 255
    assert torch.allclose(codes, codes.round(), atol=1e-4)
    with torch.no_grad():
        _, ok = obj(result.images, torch.arange(2))
    assert torch.equal(ok, result.done)


def test_mask_limits_the_perturbation():
    rec = TinyRecognizer(threshold=0.1)
    x, lm = face_batch(2, size=40)
    mask = torch.zeros(2, 1, 40, 40)
    mask[:, :, 8:32, 8:32] = 1.0
    result = IFGSM(DodgeObjective(rec, lm), eps=0.05, alpha=0.01, steps=5)(x, mask=mask)
    diff = (result.images - x).abs().amax(1, keepdim=True)
    assert float(diff[mask == 0].max()) == 0.0
    assert float(diff[mask == 1].max()) > 0.0


def test_dodge_leaves_the_original_embedding_despite_zero_gradient_there():
    """The distance has no gradient at the original; the seeded kick must still move it."""
    rec = TinyRecognizer(threshold=0.1)
    x, lm = face_batch(1, size=40)
    obj = DodgeObjective(rec, lm, margin=0.0)
    result = PFGVM(obj, alpha=2.0, lam=0.0, steps=3, calibrate=True)(x)
    assert float(obj.score(result.images, torch.arange(1))) > 0.0


def test_dodge_with_others_must_leave_every_reference():
    rec = TinyRecognizer(threshold=0.02)
    x, lm = face_batch(2, size=40)
    moved = x.flip(0)  # each face replaced by the other one
    with torch.no_grad():
        ref = rec(x, lm)
        seen = rec(moved, lm)
    # Sample 0's other view is its own original; sample 1's is what the moved image shows.
    others = torch.stack([ref[0], seen[1]])[:, None]
    obj = DodgeObjective(rec, lm, margin=0.0, reference=ref, others=others)
    index = torch.arange(2)
    with torch.no_grad():
        plain = DodgeObjective(rec, lm, margin=0.0, reference=ref).score(moved, index)
        d = obj.score(moved, index)
        loss, done = obj(moved, index)
    assert bool((plain > 0.02).all())  # both left their own original...
    assert float(d[1]) == pytest.approx(0.0, abs=1e-5)  # ...but face 1 shows its other view
    assert float(d[0]) == pytest.approx(float(plain[0]), abs=1e-5)
    assert done.tolist() == [True, False] and float(loss[1]) > 0
    result = PFGVM(obj, alpha=2.0, lam=0.0, steps=30, calibrate=True)(x)
    assert bool(result.done.all())
    assert bool((obj.score(result.images, index) > 0.02).all())


def test_dodge_with_views_must_leave_the_original_under_each_view():
    rec = BoxViewRecognizer(threshold=0.1)
    x, lm = face_batch(2, size=40)
    mask = torch.zeros(2, 1, 40, 40)
    mask[:, :, :, :20] = 1.0  # the attack may only touch the left half
    # Face 1 has a view of its right half, which the attack cannot change.
    views = (torch.tensor([1]), torch.tensor([[20.0, 0.0, 40.0, 20.0]], dtype=torch.float64))
    index = torch.arange(2)
    plain = PFGVM(DodgeObjective(rec, lm, margin=0.0), alpha=2.0, lam=0.0, steps=20, calibrate=True)(x, mask=mask)
    assert plain.done.tolist() == [True, True]
    obj = DodgeObjective(rec, lm, margin=0.0, views=views)
    obj.prepare(x)
    with torch.no_grad():
        loss, done = obj(plain.images, index)
        d = obj.score(plain.images, index)
    assert done.tolist() == [True, False] and float(loss[1]) > 0
    assert float(d[1]) == pytest.approx(0.0, abs=1e-5)  # the view still shows the original
    # An attack that may also touch the view's pixels gets face 1 past it.
    result = PFGVM(obj, alpha=2.0, lam=0.0, steps=30, calibrate=True)(x)
    assert result.done.tolist() == [True, True]
    assert bool((obj.score(result.images, index) > 0.1).all())


def test_a_view_on_its_original_is_kicked_off_it_too():
    # A view's distance, like the face's own, has no gradient at the
    # original: pixels only the view reads (the crop's corner here; the face's
    # own chip starts 4 px in) would never move without a kick of their own.
    rec = BoxViewRecognizer(threshold=0.1)
    x, lm = face_batch(1, size=40)
    views = (torch.tensor([0]), torch.tensor([[0.0, 0.0, 6.0, 6.0]], dtype=torch.float64))
    obj = DodgeObjective(rec, lm, margin=0.0, views=views)
    obj.prepare(x)
    x = x.clone().requires_grad_(True)
    loss, _ = obj(x, torch.arange(1))
    (grad,) = torch.autograd.grad(loss.sum(), x)
    assert float(grad[..., :3, :3].abs().max()) > 0
    plain = DodgeObjective(rec, lm, margin=0.0)
    plain.prepare(x.detach())
    (own,) = torch.autograd.grad(plain(x, torch.arange(1))[0].sum(), x)
    assert float(own[..., :3, :3].abs().max()) == 0.0  # the face's own chip does not read them


def test_per_face_margins_set_each_faces_target():
    rec = TinyRecognizer(threshold=0.05)
    x, lm = face_batch(3, size=40)
    moved = x.roll(1, 0)  # every face replaced by another: far from its own embedding
    index = torch.arange(3)
    obj = DodgeObjective(rec, lm, margin=torch.tensor([0.0, 10.0, 0.0]))
    obj.prepare(x)
    with torch.no_grad():
        d = obj.score(moved, index)
        loss, done = obj(moved, index)
    assert bool((d > 0.05).all())
    assert done.tolist() == [True, False, True]  # face 1's margin is out of reach
    assert float(loss[1]) == pytest.approx(10.05 - float(d[1]), rel=1e-4) and float(loss[0]) == 0.0
    near = ImpersonateObjective(rec, lm, x.new_zeros(3, 16), margin=torch.tensor([0.0, 0.0, 1.0]))
    assert torch.is_tensor(near.target) and near.target.tolist() == pytest.approx([0.05, 0.05, -0.95])


def test_bim_is_untargeted_and_uses_kurakin_iterations():
    assert [kurakin_steps(e) for e in (4, 8, 16, 32)] == [5, 10, 20, 36]
    head = TinyClassifier(classes=5, seed=1)
    x = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 0.6 + 0.2
    clean = head(x).argmax(1)
    attack = create_attack("bim.eps16", CrossEntropyObjective(head, clean, mode="untargeted"))
    assert attack.steps == 20 and attack.eps == pytest.approx(16 / 255) and not attack.early_stop
    adv = attack(x).images
    assert float((adv - x).abs().max()) <= 16 / 255 + 1e-6
    assert (head(adv).argmax(1) != clean).float().mean() >= 0.8


def test_illc_targets_the_least_likely_class():
    head = TinyClassifier(classes=6, seed=2)
    x = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(2)) * 0.6 + 0.2
    least = head(x).argmin(1)
    obj = CrossEntropyObjective(head, mode="least_likely")
    result = ILLC(obj, eps=32)(x)
    assert torch.equal(obj.labels, least)
    hits = (head(result.images).argmax(1) == least).float().mean()
    assert hits >= 0.8
    assert torch.equal(result.done, head(result.images).argmax(1) == least)
    with pytest.raises(VdeidError, match="least"):
        ILLC(CrossEntropyObjective(head, least, mode="targeted"))


def test_kanonymity_hides_the_true_class_among_k():
    k = 3
    head = TinyClassifier(classes=6, seed=3)
    x = torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(3)) * 0.6 + 0.2
    true = head(x).argmax(1)
    obj = KAnonymityObjective(head, true, k=k, tolerance=0.25)
    result = KAnonymity(obj, eps=0.1, alpha=2.0, steps=60)(x)
    p = head(result.images).softmax(1)
    assert bool(result.done.all())
    p_true = p.gather(1, true[:, None])[:, 0]
    assert bool((p_true <= 1.0 / k + 1e-6).all())
    # The true class shares the top k with near-equal companions.
    topk = p.topk(k, dim=1)
    assert bool((topk.indices == true[:, None]).any(1).all())
    assert bool((topk.values[:, -1] >= 0.75 * topk.values[:, 0]).all())
    with pytest.raises(VdeidError):
        KAnonymity(CrossEntropyObjective(head))


def test_ensemble_needs_every_member():
    x = torch.full((1, 3, 2, 2), 0.5)
    near = Quadratic(torch.full((1, 3, 2, 2), 0.5), tol=0.1)
    far = Quadratic(torch.full((1, 3, 2, 2), 1.0), tol=0.1)
    loss, ok = EnsembleObjective([near, far])(x, torch.arange(1))
    assert not bool(ok[0])
    assert float(loss[0]) == pytest.approx(0.5 * 12 * 0.25)
    _, ok = EnsembleObjective([near, near])(x, torch.arange(1))
    assert bool(ok[0])


def test_impersonate_moves_towards_the_donor():
    rec = TinyRecognizer(threshold=0.01)  # out of reach: the attack runs all its steps
    x, lm = face_batch(2, size=40)
    with torch.no_grad():
        emb = rec(x, lm)
    donors = emb.flip(0)
    obj = ImpersonateObjective(rec, lm, donors, margin=0.0)
    obj.prepare(x)
    before = obj.score(x, torch.arange(2))
    after = obj.score(PFGVM(obj, alpha=2.0, steps=8, calibrate=True)(x).images, torch.arange(2))
    assert bool((after < before).all())


def test_registry_and_errors():
    assert {"pfgvm.paper_a", "pfgvm.paper_b", "ifgvm.paper_a", "ifgsm.paper"} <= set(list_attacks("*paper*"))
    assert list_attacks("bim.*") == sorted(f"bim.eps{e}" for e in (4, 8, 16, 32, 64, 128))
    a = create_attack("pfgvm.paper_b", Quadratic(torch.zeros(1, 3, 2, 2)))
    assert (a.alpha, a.steps, a.lam) == (0.55, 58, 0.28)
    with pytest.raises(VdeidError, match="valid names: .*pfgvm"):
        create_attack("fgsm", Quadratic(torch.zeros(1)))
    with pytest.raises(ShapeError):
        PFGVM(Quadratic(torch.zeros(1, 3, 2, 2)))(torch.zeros(3, 2, 2))
