"""A small real corpus: a drone clip, photos, a corrupt video and a text file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from batch_corpus import FAST, SAMPLE, save_photo, trimmed_clip


@pytest.fixture(scope="session")
def corpus(tmp_path_factory, astronaut, request) -> Path:
    """Corpus folder: videos, photos (jpg, png, real faces), a truncated mp4, a text file.

    The shared data beside the checkout adds a trimmed real clip and two
    photos of real people when present.
    """
    root = tmp_path_factory.mktemp("corpus")
    drone = root / "drone"
    drone.mkdir()
    trimmed_clip(SAMPLE, drone / "astronaut_drone.mp4", packets=24)
    (drone / "broken.mp4").write_bytes(SAMPLE.read_bytes()[:3000])
    save_photo(astronaut, root / "photos" / "astronaut.jpg")
    save_photo(astronaut[::2, ::2], root / "photos" / "small" / "astronaut.png")
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("not media\n")
    try:
        faces_dir = request.getfixturevalue("faces_dir")
        videos_dir = request.getfixturevalue("videos_dir")
    except pytest.skip.Exception:
        return root
    for identity in sorted(p for p in faces_dir.iterdir() if p.is_dir())[:2]:
        photo = sorted(identity.glob("*.jpg"))[0]
        shutil.copyfile(photo, root / "photos" / f"{identity.name}.jpg")
    clip = videos_dir / "talking_head_woman_a.mp4"
    if clip.is_file():
        trimmed_clip(clip, root / "shared" / clip.name, packets=12)
    return root


@pytest.fixture(scope="session")
def local_run(corpus, tmp_path_factory):
    """``process_corpus`` on the corpus with the local engine, one worker."""
    from vdeid.batch import process_corpus

    out = tmp_path_factory.mktemp("local") / "out"
    summary = process_corpus(corpus, out, FAST)
    return out, summary


@pytest.fixture(scope="session")
def pool_run(corpus, tmp_path_factory):
    """The same corpus with two local worker processes (one math thread each on 2 cores)."""
    from vdeid.batch import process_corpus

    out = tmp_path_factory.mktemp("pool") / "out"
    summary = process_corpus(corpus, out, FAST, workers=2)
    return out, summary
