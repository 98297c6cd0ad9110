"""Measure how well protection works (``vdeid evaluate``, ``vdeid evaluate-video``).

- :mod:`.metrics`: L2 / MSSIM / PSNR, PSR at Top-k, misclassification,
  unlinkability, Wilson intervals.
- :mod:`.identification`: 1:N identification with enrolment and distractors.
- :mod:`.reconstruction`: PCA eigenface and hypersphere-projection
  de-identification (evaluation-only methods).
- :mod:`.transforms`: JPEG and resize applied before identification.
- :mod:`.runner`: methods × source × target over a face set, cached on disk.
- :mod:`.tables`, :mod:`.plots`, :mod:`.html`, :mod:`.outputs`: the papers'
  tables and figures, one self-contained HTML page.
- :mod:`.video`: stream fidelity, re-identification, SSIM and flicker of a
  protected video.
- :mod:`.evolution`: P-FGVM started from Gaussian noise.

See ``docs/results.md`` for the numbers on the project's face set.
"""

from .identification import IdentityGallery, split_identities
from .metrics import (
    l2_distance,
    misclassification_rate,
    mssim,
    protection_success_rate,
    psnr,
    true_ranks,
    unlinkability_rate,
    wilson_interval,
)
from .runner import Evaluation, EvaluationSpec, MethodRun, expand_runs

__all__ = [
    "Evaluation",
    "EvaluationSpec",
    "IdentityGallery",
    "MethodRun",
    "expand_runs",
    "l2_distance",
    "misclassification_rate",
    "mssim",
    "protection_success_rate",
    "psnr",
    "split_identities",
    "true_ranks",
    "unlinkability_rate",
    "wilson_interval",
]
