"""1:N identification on constructed descriptors with known ranks."""

from __future__ import annotations

import numpy as np
import pytest

from vdeid.errors import InputError
from vdeid.evaluate.identification import IdentityGallery, distractor_photos, split_identities
from vdeid.evaluate.metrics import protection_success_rate


def _unit(v):
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


def test_gallery_ranks_true_identity_among_distractors():
    # Two enrolled identities along x and y; distractors spread in between.
    enrol = np.array([[1, 0, 0], [1, 0.1, 0], [0, 1, 0], [0.1, 1, 0]], np.float32)
    labels = ["A", "A", "B", "B"]
    distractors = np.array([[1, 0.3, 0], [1, 0.6, 0], [0, 0, 1]], np.float32)
    g = IdentityGallery.build(enrol, labels, distractors=distractors, distractor_names=["d1", "d2", "d3"])
    assert len(g) == 5 and g.distractor.tolist() == [False, False, True, True, True]
    probes = np.stack([_unit([1, 0.05, 0]), _unit([1, 0.7, 0]), _unit([0, 0.3, 1])])
    ranks = g.ranks(probes, ["A", "A", "B"])
    # probe 0 sits on A; probe 1 is nearer d2, d1 than A; probe 2 is nearest d3, then B.
    assert ranks[0] == 1
    assert ranks[1] == 3
    assert ranks[2] == 2
    closed = g.ranks(probes, ["A", "A", "B"], closed_set=True)
    assert closed[0] == 1 and closed[1] == 1  # distractors left out
    assert protection_success_rate(ranks, 1) == pytest.approx(100 * 2 / 3)


def test_nan_probe_ranks_last():
    g = IdentityGallery.build(np.eye(3, dtype=np.float32), ["A", "B", "C"])
    ranks = g.ranks(np.full((1, 3), np.nan), ["B"])
    assert ranks.tolist() == [4]


def test_distractor_name_clash_is_refused():
    with pytest.raises(InputError):
        IdentityGallery.build(np.eye(2, dtype=np.float32), ["A", "B"], distractors=np.eye(2)[:1], distractor_names=["A"])


def test_split_keeps_an_enrolment_photo(tmp_path):
    for name, n in (("Ann", 4), ("Bob", 2), ("Cid", 1)):
        d = tmp_path / name
        d.mkdir()
        for i in range(n):
            (d / f"{i}.jpg").write_bytes(b"x")
    splits = split_identities(tmp_path, probes_per_identity=3, seed=1)
    assert [s.identity for s in splits] == ["Ann", "Bob"]  # Cid has one photo
    ann, bob = splits
    assert len(ann.probes) == 3 and len(ann.enrol) == 1
    assert len(bob.probes) == 1 and len(bob.enrol) == 1
    assert not set(ann.probes) & set(ann.enrol)
    again = split_identities(tmp_path, probes_per_identity=3, seed=1)
    assert [s.probes for s in again] == [s.probes for s in splits]
    assert len(split_identities(tmp_path, limit_identities=1)) == 1


def test_distractors_are_one_identity_each(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.png").write_bytes(b"x")
    names = [n for n, _ in distractor_photos(tmp_path)]
    assert len(set(names)) == 2
