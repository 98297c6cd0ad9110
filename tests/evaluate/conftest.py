"""A tiny real face set shared by the evaluation tests (one cache for all)."""

from __future__ import annotations

import pytest

#: Identities with LFW-size (150x150) photos: fast to detect and embed.
IDENTITIES = ["Colin_Powell", "George_W_Bush", "Hugo_Chavez", "Jackie_Chan", "Kofi_Annan", "Laura_Bush", "Serena_Williams", "Tony_Blair"]


@pytest.fixture(scope="session")
def _one_thread():
    """One torch thread: on a busy 2-core machine more threads spin and run far slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory, shared_dir, _one_thread):
    """``faces/`` (8 identities × 2 real photos), ``gallery/`` (3 distractors) and a shared ``cache/``.

    Symlinks to ../shared, never copies.
    """
    root = tmp_path_factory.mktemp("tiny")
    for name in IDENTITIES:
        (root / "faces" / name).mkdir(parents=True)
        for src in sorted((shared_dir / "data" / "faces" / name).glob("lfw_*.jpg"))[:2]:
            (root / "faces" / name / src.name).symlink_to(src)
    (root / "gallery").mkdir()
    for src in sorted((shared_dir / "data" / "lfw_gallery").glob("*.jpg"))[:3]:
        (root / "gallery" / src.name).symlink_to(src)
    (root / "cache").mkdir()
    return root
