"""The vdeid command's OpenMP wait policy: set when absent, never over the user's."""

from __future__ import annotations

import os

from cli.tuning import tune_process


def test_sets_passive_wait_policy_when_unset(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    tune_process()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"


def test_keeps_the_users_policy(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    tune_process()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
