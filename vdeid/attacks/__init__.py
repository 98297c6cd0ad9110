"""Adversarial attacks, one per file, and their registry.

``create_attack(name, objective, **overrides)`` builds an attack by name or
by preset (``pfgvm.paper_a`` holds Table 2's model-A parameters of the ICIP
2019 paper, ``bim.eps8`` the budget of Ghafourian et al.); ``list_attacks``
takes fnmatch patterns (timm's ``create_model`` / ``list_models`` shape).

Attacks grouped by norm:

- L2 penalty: :class:`PFGVM`
- Linf: :class:`IFGVM`, :class:`IFGSM`, :class:`BIM`, :class:`ILLC`,
  :class:`KAnonymity`
"""

from __future__ import annotations

import fnmatch
from typing import Any

from ..errors import VdeidError
from .base import Attack, AttackResult, quantize_ste
from .bim import BIM, kurakin_steps
from .ifgsm import IFGSM
from .ifgvm import IFGVM
from .illc import ILLC
from .kanonymity import KAnonymity
from .objectives import (
    CrossEntropyObjective,
    DodgeObjective,
    EnsembleObjective,
    ImpersonateObjective,
    KAnonymityObjective,
    Objective,
)
from .pfgvm import PFGVM

__all__ = [
    "Attack",
    "AttackResult",
    "PFGVM",
    "IFGVM",
    "IFGSM",
    "BIM",
    "ILLC",
    "KAnonymity",
    "Objective",
    "DodgeObjective",
    "ImpersonateObjective",
    "CrossEntropyObjective",
    "KAnonymityObjective",
    "EnsembleObjective",
    "create_attack",
    "list_attacks",
    "attack_preset",
    "quantize_ste",
    "kurakin_steps",
]

_ATTACKS: dict[str, type[Attack]] = {cls.name: cls for cls in (PFGVM, IFGVM, IFGSM, BIM, ILLC, KAnonymity)}

# Papers' parameters. Chatzikyriakidis et al. (ICIP 2019) Table 2: model A is
# the small CNN, model B the VGG-Face transfer model; eps on [0, 1] pixels.
# I-FGSM's step is eps / N. Ghafourian et al.: eps on the 0-255 scale with
# alpha = 1 and N = min(eps + 4, 1.25 eps); the paper runs the fixed budget.
_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "pfgvm.paper_a": ("pfgvm", {"alpha": 1.0, "steps": 50, "lam": 0.22, "early_stop": False}),
    "pfgvm.paper_b": ("pfgvm", {"alpha": 0.55, "steps": 58, "lam": 0.28, "early_stop": False}),
    "pfgvm.noise": ("pfgvm", {"alpha": 1.0, "steps": 50, "lam": 0.22, "start": "noise", "early_stop": False}),
    "ifgvm.paper_a": ("ifgvm", {"alpha": 1.0, "steps": 50, "eps": 0.022, "early_stop": False}),
    "ifgvm.paper_b": ("ifgvm", {"alpha": 0.1, "steps": 40, "eps": 0.022, "early_stop": False}),
    "ifgsm.paper": ("ifgsm", {"steps": 20, "eps": 0.026, "early_stop": False}),
}
for _eps in (4, 8, 16, 32, 64, 128):
    for _name in ("bim", "illc"):
        _PRESETS[f"{_name}.eps{_eps}"] = (_name, {"eps": float(_eps), "alpha": 1.0, "early_stop": False})


def list_attacks(pattern: str = "*") -> list[str]:
    """Attack names and presets matching an fnmatch ``pattern`` (e.g. ``"bim*"``)."""
    return sorted(n for n in (*_ATTACKS, *_PRESETS) if fnmatch.fnmatch(n, pattern))


def attack_preset(name: str) -> tuple[type[Attack], dict[str, Any]]:
    """The attack class and keyword arguments a name or preset stands for.

    Raises
    ------
    VdeidError
        Unknown name; the message lists the valid ones.
    """
    key = name.strip().lower()
    if key in _ATTACKS:
        return _ATTACKS[key], {}
    if key in _PRESETS:
        base, kwargs = _PRESETS[key]
        return _ATTACKS[base], dict(kwargs)
    raise VdeidError(f"unknown attack {name!r}; valid names: {', '.join(list_attacks())}")


def create_attack(name: str, objective: Objective, **overrides: Any) -> Attack:
    """Build an attack by name or preset; ``None`` overrides are ignored.

    Parameters
    ----------
    name : str
        ``pfgvm``, ``ifgvm``, ``ifgsm``, ``bim``, ``illc``, ``kanon`` or a
        preset from :func:`list_attacks`.
    objective : Objective
        What to optimise.
    **overrides
        Constructor arguments replacing the preset's (``alpha=0.5``...).

    Examples
    --------
    >>> attack = create_attack("pfgvm.paper_a", objective)
    >>> attack = create_attack("bim", objective, eps=16)
    """
    cls, kwargs = attack_preset(name)
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    return cls(objective, **kwargs)
