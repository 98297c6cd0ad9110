"""The vdeid command's OpenMP wait policy: set when absent, never over the user's."""

from __future__ import annotations

import os
import subprocess
import sys

from cli.tuning import tune_process


def test_sets_passive_wait_policy_when_unset(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    tune_process()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"


def test_keeps_the_users_policy(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    tune_process()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_python_m_vdeid_tunes_before_torch_loads():
    # What `python -m vdeid` does: argv[0] is "-m" while the package is imported.
    code = "import sys; sys.argv = ['-m']; import vdeid, os; print(os.environ.get('OMP_WAIT_POLICY'))"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "PASSIVE"
    code = "import vdeid, os; print(os.environ.get('OMP_WAIT_POLICY'))"  # a library user's process: untouched
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None"
