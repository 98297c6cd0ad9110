"""One file through the batch worker: what its manifest record says."""

from __future__ import annotations

from vdeid.batch.walk import Item
from vdeid.batch.worker import FileProcessor
from vdeid.config import Config
from vdeid.io.images import write_image
from vdeid_testing import DEVICE


def test_photo_record_counts_fallbacks_by_reason(tmp_path, astronaut):
    source, output = tmp_path / "in" / "a.png", tmp_path / "out" / "a.png"
    source.parent.mkdir()
    write_image(source, astronaut)
    config = Config(method="pfgvm", device=DEVICE)
    config.attack.max_iter = 0  # no budget: every face misses its target and is blurred
    record = FileProcessor(config)(Item("photo", source, "a.png", output, "a.png"))
    assert record["status"] == "ok", record["error"]
    assert record["faces"] >= 1 and record["fallback"] == record["faces"]
    assert record["fallback_reasons"] == {"attack": record["faces"]}
