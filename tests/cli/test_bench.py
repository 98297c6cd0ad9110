"""``vdeid bench`` on the bundled sample (fields only: timings are not asserted)."""

from __future__ import annotations

import json

from vdeid_testing import DEVICE, SAMPLE, read_frames, run_cli


def test_bench_json_has_every_field(capsys):
    code, out, err = run_cli(
        ["bench", "--method", "blur", "--device", DEVICE, "--preset", "ultrafast",
         "--kernel-batches", "1,2", "--kernel-iters", "1", "--json"],
        capsys,
    )
    assert code == 0, err
    result = json.loads(out)
    p = result["pipeline"]
    assert p["video"] == str(SAMPLE) and p["method"] == "blur" and p["device"] == DEVICE
    assert p["frames"] == len(read_frames(SAMPLE)) and p["faces"] > 0
    for stage in ("decode", "detect", "protect", "encode", "end_to_end"):
        assert set(p["stages"][stage]) == {"seconds", "frames_per_s", "faces_per_s"}
    assert p["stages"]["end_to_end"]["frames_per_s"] > 0
    # blur makes no attack iterations; a CPU run has no GPU to sample.
    assert p["attack_iterations"] == 0 and p["attack_face_iterations_per_s"] is None
    if DEVICE == "cpu":
        assert p["gpu_utilisation"] is None and p["peak_cuda_bytes"] is None
    else:  # utilisation needs NVML or nvidia-smi; the allocator's peak is always there
        assert p["gpu_utilisation"] is None or 0 <= p["gpu_utilisation"] <= 100
        assert p["peak_cuda_bytes"] > 0
    assert p["peak_rss_bytes"] > 0 and p["cpu_seconds"] > 0
    assert [k["batch"] for k in result["kernel"]] == [1, 2]
    assert all(k["face_iterations_per_s"] > 0 and k["iterations"] == 1 for k in result["kernel"])
    assert result["host"]["cpu_cores"] >= 1 and result["host"]["device"] == DEVICE


def test_bench_table_names_the_figures(capsys):
    code, out, err = run_cli(["bench", "--no-pipeline", "--device", DEVICE, "--kernel-batches", "1", "--kernel-iters", "1"], capsys)
    assert code == 0, err
    assert "face-it/s" in out and "attack kernel" in out and "pipeline:" not in out


def test_bench_rejects_bad_batches(capsys):
    code, _, err = run_cli(["bench", "--no-pipeline", "--kernel-batches", "0,x"], capsys)
    assert code == 2 and "--kernel-batches" in err and "1,16,64,256" in err
