"""The protocol every protection method follows, naive or adversarial."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Protocol

import numpy as np

from ..faces import Faces


@dataclass
class FaceOutcome:
    """What happened to one face in one frame.

    Attributes
    ----------
    frame : int
        Index of the frame within the call (0-based).
    track_id : int
        The face's track id (-1 when untracked).
    method : str
        The method that produced the shipped pixels: the fallback's name when
        the primary method failed, ``"<fallback>+<attack>"`` (e.g.
        ``"blur+pfgvm"``) when the attack, run again on the fallback's
        pixels, took them to its target (``AttackConfig.harden_fallback``).
    protected : bool
        True when the face region was altered by some method. Never False
        for a face that was passed in: methods fail closed.
    iterations : int
        Attack iterations spent (0 for naive methods).
    reached : bool or None
        For adversarial methods, whether the target was reached before the
        fallback; None for naive methods.
    distance : float or None
        Recogniser distance to the original face after protection, if known.
    fallback_reason : str or None
        Why the fallback's pixels shipped instead of the method's (None when
        they did not): one of :data:`FALLBACK_REASONS`.
    """

    frame: int
    track_id: int
    method: str
    protected: bool = True
    iterations: int = 0
    reached: Optional[bool] = None
    distance: Optional[float] = None
    fallback_reason: Optional[str] = None


#: Why a face got the fallback, as :attr:`FaceOutcome.fallback_reason` says.
FALLBACK_REASONS = {
    "no_landmarks": "could not be attacked: no landmarks to align it (nor a track to borrow them from), or no pixels in the frame",
    "attack": "the attack did not reach its target on the written frame within its iteration budget",
    "encoder": "reached its target on the written frame, but fell short after the output's encoder",
    "neighbour": "protected, until a neighbouring face's fallback reached into its crop and undid it, and a second attack around that fallback did not restore it",
    "error": "the method failed on the chunk, so the whole chunk got the fallback",
    "steady": "protected, but between fallback faces of its own track (at most AttackConfig.steady_gap frames apart), so it got the fallback too and the face does not flash sharp between blurred frames",
}


class Method(Protocol):
    """A protection method.

    ``protect`` receives a chunk of consecutive frames and their faces and
    returns the frames with every face region protected. Implementations may
    keep state between calls (warm starts keyed by track id), so a chunk must
    follow the previous one in time.
    """

    name: str

    def protect(
        self, frames: list[np.ndarray], faces: list[Faces]
    ) -> tuple[list[np.ndarray], list[FaceOutcome]]:
        """Protect every face of every frame.

        Parameters
        ----------
        frames : list of ndarray of shape (H, W, 3)
            RGB frames, uint8 in [0, 255] or uint16 in [0, 65535]
            (high-bit-depth video). Not modified.
        faces : list of Faces
            ``faces[i]`` are the faces of ``frames[i]``.

        Returns
        -------
        protected : list of ndarray of shape (H, W, 3)
            New frames, same dtype as the input.
        outcomes : list of FaceOutcome
            One per face passed in.
        """
        ...

    def reset(self) -> None:
        """Forget state carried between chunks (warm starts).

        Called between unrelated inputs, e.g. before each photo, so one
        photo's perturbation never seeds another's.
        """
        ...
