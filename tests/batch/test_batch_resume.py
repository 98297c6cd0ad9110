"""When a rerun may skip a file: every reason it must not."""

from __future__ import annotations

import pytest

from vdeid.batch.manifest import file_sha256
from vdeid.batch.resume import comparable_config, is_complete_record, why_not_done
from vdeid.batch.walk import collect_items
from vdeid.config import Config

MODELS = [{"role": "detector", "name": "mtcnn", "file": "/x/pnet.pt", "sha256": "aa"}]


@pytest.fixture
def done(tmp_path):
    """A photo, its output and the record an ok run would have written."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    (src / "a.jpg").write_bytes(b"input bytes")
    (out / "a.jpg").write_bytes(b"protected bytes")
    (item,) = collect_items(src, out)
    config = Config(method="blur").to_dict()
    record = {
        "input": "a.jpg",
        "output": "a.jpg",
        "status": "ok",
        "input_sha256": file_sha256(item.source),
        "input_bytes": item.source.stat().st_size,
        "output_sha256": file_sha256(item.output),
        "output_bytes": item.output.stat().st_size,
        "config": config,
        "models": MODELS,
        "run": "r1",
    }
    return item, record, config


def test_unchanged_file_is_done(done):
    item, record, config = done
    assert why_not_done(record, item, config=config, models=MODELS) is None


def test_models_compare_by_checksum_not_path(done):
    item, record, config = done
    moved = [dict(MODELS[0], file="/elsewhere/pnet.pt")]
    assert why_not_done(record, item, config=config, models=moved) is None


def test_overwrite_flag_does_not_count_as_a_parameter(done):
    item, record, _ = done
    config = Config(method="blur", overwrite=True).to_dict()
    assert why_not_done(record, item, config=config, models=MODELS) is None


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda item, record: None, None),
        (lambda item, record: record.update(status="failed", output_sha256=None), "last run failed"),
        (lambda item, record: record.update(config=Config(method="pixelate").to_dict()), "parameters changed"),
        (lambda item, record: record.update(models=[dict(MODELS[0], sha256="bb")]), "model weights changed"),
        (lambda item, record: item.output.unlink(), "output missing"),
        (lambda item, record: item.output.write_bytes(b"protected bytez"), "output changed"),
        (lambda item, record: item.source.write_bytes(b"input bytez"), "input changed"),
        (lambda item, record: record.update(output="b.jpg"), "output path changed"),
    ],
)
def test_each_change_forces_a_redo(done, change, reason):
    item, record, config = done
    change(item, record)
    assert why_not_done(record, item, config=config, models=MODELS) == reason


def test_no_record_means_new(done):
    item, _, config = done
    assert why_not_done(None, item, config=config, models=MODELS) == "new"


def test_resumed_skip_counts_as_complete(done):
    _, record, _ = done
    assert is_complete_record(record)
    assert is_complete_record(dict(record, status="skipped", reason="resumed"))
    assert not is_complete_record(dict(record, status="skipped", reason="not a video or photo"))
    assert not is_complete_record(dict(record, output_sha256=None))


def test_comparable_config_is_json_shaped():
    cfg = Config().to_dict()
    plain = comparable_config(cfg)
    assert plain["detect"]["thresholds"] == list(cfg["detect"]["thresholds"])
    assert "overwrite" not in plain
