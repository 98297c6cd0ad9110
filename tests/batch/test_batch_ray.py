"""The Ray engine gives the same outputs as the local one, and resumes the same way."""

from __future__ import annotations

import sys

import pytest
from batch_corpus import FAST, read_frames

from vdeid.batch import process_corpus, read_manifest
from vdeid.batch.manifest import latest_records
from vdeid.errors import VdeidError


@pytest.fixture(scope="module")
def ray_local():
    """A private 2-CPU Ray instance for this module."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'vdeid[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def ray_run(ray_local, corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("ray") / "out"
    return out, process_corpus(corpus, out, FAST, engine="ray")


@pytest.mark.slow
def test_ray_matches_local_workers(pool_run, ray_run):
    (pool_out, pool), (ray_out, remote) = pool_run, ray_run
    assert (remote.ok, remote.failed, remote.skipped) == (pool.ok, pool.failed, pool.skipped)
    assert (remote.faces, remote.frames) == (pool.faces, pool.frames)
    mine = latest_records(read_manifest(pool_out / "manifest.jsonl"))
    theirs = latest_records(read_manifest(ray_out / "manifest.jsonl"))
    assert set(mine) == set(theirs)
    for rel, m in mine.items():
        t = theirs[rel]
        assert (t["status"], t["output"], t.get("faces")) == (m["status"], m["output"], m.get("faces")), rel
        if m["status"] == "ok":
            # A Ray task has one CPU, so one math thread like a local worker
            # on 2 cores, and x264 encodes the same on one machine: same bytes.
            assert t["torch_threads"] == m["torch_threads"] == 1
            assert t["output_sha256"] == m["output_sha256"], rel
    video = "drone/astronaut_drone.mp4"
    assert len(read_frames(ray_out / video)) == mine[video]["frames"]


def test_ray_rerun_resumes(corpus, ray_local, ray_run):
    out, first = ray_run
    again = process_corpus(corpus, out, FAST, engine="ray")
    assert (again.resumed, again.ok, again.failed) == (first.ok, 0, first.failed)


def test_missing_ray_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    (tmp_path / "in").mkdir()
    with pytest.raises(VdeidError, match=r"pip install 'vdeid\[ray\]'"):
        process_corpus(tmp_path / "in", tmp_path / "out", FAST, engine="ray")
    assert not (tmp_path / "out").exists()
