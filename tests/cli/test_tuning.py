"""The vdeid command's OpenMP wait policy: set when absent, never over the user's."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

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
    # `python -m vdeid` imports the package before vdeid/__main__.py: the
    # package must not load torch, so the command's settings come first.
    code = textwrap.dedent(
        """
        import os, runpy, sys

        class Watch:  # notes the wait policy when torch starts to load
            def find_spec(self, name, path=None, target=None):
                if name == "torch":
                    os.environ.setdefault("SEEN", os.environ.get("OMP_WAIT_POLICY", "unset"))

        sys.meta_path.insert(0, Watch())
        sys.argv = ["vdeid", "bench", "--help"]
        try:
            runpy.run_module("vdeid", run_name="__main__", alter_sys=True)
        except SystemExit:
            pass
        import torch
        print(os.environ["SEEN"])
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "PASSIVE"
    # A library user's process: untouched, and torch loads with what vdeid needs, not before.
    code = "import sys, os, vdeid; print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules, vdeid.Config)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().startswith("None False <class 'vdeid.config.Config'>")
