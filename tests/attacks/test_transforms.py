"""The compression proxy used for expectation over transformation."""

from __future__ import annotations

import torch

from tiny_models import TinyRecognizer, face_batch
from vdeid.attacks import PFGVM, DodgeObjective
from vdeid.attacks.transforms import CompressionProxy, rgb_to_ycbcr, ycbcr_to_rgb


def test_colour_round_trip_and_flat_images_pass_unchanged():
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(ycbcr_to_rgb(rgb_to_ycbcr(x)), x, atol=1e-5)
    flat = torch.full((1, 3, 8, 8), 0.4)
    assert torch.allclose(CompressionProxy()(flat), flat, atol=1e-5)


def test_chroma_detail_is_averaged_but_luma_kept():
    # A 1-pixel colour checkerboard at constant luma: 4:2:0 removes it.
    ycc = torch.zeros(1, 3, 8, 8)
    ycc[:, 0] = 0.5
    ycc[:, 1, ::2, ::2] = 0.1
    ycc[:, 1, 1::2, 1::2] = 0.1
    ycc[:, 1] -= 0.05
    out = rgb_to_ycbcr(CompressionProxy(sigma=0.0)(ycbcr_to_rgb(ycc)))
    assert float(out[:, 1].std()) < 0.1 * float(ycc[:, 1].std())
    assert torch.allclose(out[:, 0], ycc[:, 0], atol=1e-4)


def test_random_draws_are_seeded_and_differentiable():
    x = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    proxy = CompressionProxy()
    a = proxy(x, generator=torch.Generator().manual_seed(5))
    b = proxy(x, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    (g,) = torch.autograd.grad(a.sum(), x)
    assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_robust_dodge_is_done_only_when_the_clean_and_proxied_images_clear_it():
    rec = TinyRecognizer(threshold=0.1)
    x, lm = face_batch(2, size=40)
    obj = DodgeObjective(rec, lm, margin=0.02, jitter=1.0, transform=CompressionProxy(), transform_margin=0.0)
    result = PFGVM(obj, alpha=2.0, lam=0.02, steps=30, calibrate=True)(x)
    assert bool(result.done.all())
    idx = torch.arange(2)
    with torch.no_grad():
        clean = obj.distances(result.images, idx)
        proxied = rec.distance(rec(CompressionProxy()(result.images), lm), obj.reference)
    assert bool((clean > 0.12).all()) and bool((proxied > 0.1).all())
