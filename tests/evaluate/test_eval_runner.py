"""The evaluation runner and CLI on a tiny real subset (3 identities, 3 distractors)."""

from __future__ import annotations

import json
import shutil

import pytest

from vdeid.evaluate.runner import Evaluation, EvaluationSpec, MethodRun, expand_runs

pytestmark = pytest.mark.slow


def _spec(tiny, methods, **kw):
    return EvaluationSpec(
        tiny / "faces", tiny / "gallery", methods=methods, sources=["dlib"], targets=["dlib"],
        probes_per_identity=1, limit_identities=3, eps_sweep=(4,), jpeg=(75,), **kw,
    )


def test_expand_runs_sweeps_attacks_per_source():
    runs = expand_runs(["bim", "blur", "pfgvm"], ["dlib", "mobileface:x"], eps_sweep=(4, 8))
    assert runs[0] == MethodRun("none")
    assert MethodRun("bim", "mobileface:x", 8.0) in runs and MethodRun("pfgvm", "dlib") in runs
    assert sum(r.method == "bim" for r in runs) == 4 and MethodRun("blur") in runs


def test_runner_measures_and_caches(tiny):
    ev = Evaluation(_spec(tiny, ["noise", "bim"]), tiny / "cache")
    result = ev.run()
    assert result["sample"]["probes"] == 3 and result["sample"]["gallery_identities"]["dlib"] == 6
    rows = {(r["label"], r["variant"], r["transform"]): r for r in result["rows"]}
    none = rows[("none", "-", "none")]
    assert none["l2"] == 0 and none["mssim"] == pytest.approx(1.0) and none["unlinkability"] == 0.0
    noise = rows[("noise", "-", "none")]
    assert noise["l2"] > 1.0 and noise["mssim"] < 0.99
    bim = rows[("bim ε=4", "attack", "none")]
    assert 0 < bim["linf"] <= 4 / 255 + 1e-6  # the budget holds on the written uint8 pixels
    assert {t for (_, _, t) in rows} == {"none", "jpeg75", "resize"}
    for r in result["rows"]:
        assert 0 <= r["psr"]["1"] <= 100 and r["psr"]["1"] >= r["psr"]["5"] >= r["psr"]["50"]

    # A rerun with one more method protects only that method.
    built = []
    ev2 = Evaluation(_spec(tiny, ["noise", "bim", "pixelate"]), tiny / "cache")
    original = ev2._build_method
    ev2._build_method = lambda run, config: built.append(run.method) or original(run, config)
    again = ev2.run()
    assert built == ["pixelate"]
    same = {(r["label"], r["variant"], r["transform"]): r for r in again["rows"]}
    assert same[("noise", "-", "none")]["psr"] == noise["psr"]


def test_cli_writes_every_output(tiny, tmp_path, capsys):
    from vdeid_testing import run_cli

    out = tmp_path / "out"
    code, _, err = run_cli(
        ["evaluate", tiny / "faces", "--gallery", tiny / "gallery", "--methods", "noise,pca", "--target", "dlib",
         "--probes", "1", "--limit-identities", "3", "--jpeg", "none", "--no-resize", "--no-figures",
         "--cache", tiny / "cache", "-o", out, "-q"],
        capsys,
    )
    assert code == 0, err
    for name in ("results.json", "records.json", "results.md", "index.html", "tradeoff_dlib.png"):
        assert (out / name).is_file(), name
    data = json.loads((out / "results.json").read_text())
    labels = {r["label"] for r in data["rows"]}
    assert labels == {"none", "noise", "pca"}
    assert "| pca |" in (out / "results.md").read_text()


def test_split_runs_balances_cost():
    from vdeid.evaluate.runner import split_runs

    runs = expand_runs(["pfgvm", "bim", "blur", "pixelate"], ["dlib", "mobileface:x"], eps_sweep=(4, 8))
    groups = split_runs(runs, 3)
    assert len(groups) == 3 and sorted(map(str, sum(groups, []))) == sorted(map(str, runs))
    assert all(g == sorted(g, key=runs.index) for g in groups)
    assert split_runs(runs[:1], 4) == [runs[:1]]


def test_jobs_split_work_and_match_one_job(tiny, tmp_path):
    # Workers protect and measure in a fresh cache (gallery descriptors copied
    # to save time); one job reads or computes in the shared one.
    methods = ["noise", "pixelate"]
    serial = Evaluation(_spec(tiny, methods), tiny / "cache").run(jobs=1)
    shutil.copytree(tiny / "cache" / "embeddings", tmp_path / "cache" / "embeddings")
    parallel = Evaluation(_spec(tiny, methods), tmp_path / "cache").run(jobs=2)

    def strip(rows):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]

    assert strip(parallel["rows"]) == strip(serial["rows"])
    assert [(r["label"], r["probe"]) for r in parallel["records"]] == [(r["label"], r["probe"]) for r in serial["records"]]
    # Each run was protected (by a worker) into the shared cache, once.
    protected = sorted(p.name.partition("-")[0] for p in (tmp_path / "cache" / "protected").iterdir())
    assert protected == ["noise", "none", "pixelate"]
    assert not list((tmp_path / "cache").rglob("*.tmp*"))
    assert {k for k in parallel["timings"] if k.startswith("protect")} == {"protect none -", "protect noise -", "protect pixelate -"}
