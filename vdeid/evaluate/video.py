"""Judge a protected video against its original.

:func:`evaluate_video` decodes both files in lockstep and reports

- **stream fidelity**: frame counts, frame rate, size and timestamps equal;
  audio packets bit-identical (vdeid copies audio without re-encoding);
- **protection**: on every ``every``-th frame the original's faces are found
  with MTCNN; each face is embedded by every target recogniser in the
  original and in the protected frame (at the original's landmarks: an
  identifier that knows where the face is), and counts as *still matching*
  when the distance is under the recogniser's threshold; whether MTCNN still
  finds the protected face is reported too;
- **quality**: SSIM of each protected face box against the original's;
- **temporal flicker**: the perturbation ``δ_t = protected_t - original_t``
  inside a face box, compared with the next frame's ``δ_{t+1}`` in the same
  box: mean ``|δ_{t+1} - δ_t|`` next to the mean ``|δ_t|`` (grey levels,
  0-255). Changes of the codec alone show in the background change measured
  outside every face box;
- **dlib invader** (``invader=True``): dlib's own pipeline
  (:class:`~vdeid.evaluate.invader.DlibInvader`: its CNN face detector, 5-point
  predictor and ResNet, none of them vdeid's MTCNN alignment) finds the faces
  of the original and looks for each in the protected frame.

As a control, every recogniser (and the invader) also embeds an all-black
frame where it embeds each face. A face-frame whose original lies within the
threshold of that is one the recogniser cannot tell from an empty frame (a
face half hidden by a hand and cut by the frame edge): removing the face, even
with a solid mask, leaves it "matching". The report counts such face-frames
and gives the share of the others that still match beside the share of all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ..errors import InputError
from ..faces import Faces
from ..imageops import from_float, to_float
from ..progress import Progress, ProgressCallback, no_progress
from . import metrics as M
from .identification import embed_face

logger = logging.getLogger(__name__)

__all__ = ["audio_packets", "evaluate_video"]


def audio_packets(path: str | Path) -> list[list[bytes]]:
    """Payloads of every audio stream's packets, in stream order.

    Raises
    ------
    InputError
        The file cannot be opened.
    """
    import av

    try:
        with av.open(str(path)) as container:
            streams = [s for s in container.streams if s.type == "audio"]
            out: dict[int, list[bytes]] = {s.index: [] for s in streams}
            if streams:
                for packet in container.demux(*streams):
                    if packet.size:
                        out[packet.stream.index].append(bytes(packet))
            return [out[s.index] for s in streams]
    except av.FFmpegError as exc:
        raise InputError(f"cannot read the audio of this file ({exc})", path) from exc


@dataclass
class _Pending:
    """A face of frame t waiting for frame t + 1 to measure flicker."""

    box: tuple[slice, slice]
    delta: np.ndarray


def _box_slices(box: np.ndarray, shape: tuple[int, int]) -> Optional[tuple[slice, slice]]:
    h, w = shape
    x0, y0 = int(max(0, np.floor(box[0]))), int(max(0, np.floor(box[1])))
    x1, y1 = int(min(w, np.ceil(box[2]))), int(min(h, np.ceil(box[3])))
    if x1 - x0 < 7 or y1 - y0 < 7:
        return None
    return slice(y0, y1), slice(x0, x1)


def evaluate_video(
    original: str | Path,
    protected: str | Path,
    *,
    targets: Sequence[str] = ("dlib",),
    every: int = 5,
    device: str = "cpu",
    detector=None,
    max_frames: Optional[int] = None,
    invader: bool = False,
    progress: ProgressCallback = no_progress,
) -> dict:
    """Compare a protected video with its original.

    Parameters
    ----------
    original, protected : str or Path
        The input video and vdeid's output.
    targets : sequence of str
        Recogniser specs that try to re-identify the faces.
    every : int, optional
        Check faces on every ``every``-th frame (flicker uses the frame after
        each checked one). (Default: 5)
    device : str, optional
        Where the detector and recognisers run. (Default: "cpu")
    detector : object, optional
        ``detect(list of uint8 frames) -> list[Faces]``; MTCNN with the
        default settings when None.
    max_frames : int, optional
        Stop after this many frames (quick checks).
    invader : bool, optional
        Also judge with dlib's own pipeline (slower: its detector runs on
        both frames). (Default: False)
    progress : callable, optional
        Receives :class:`~vdeid.progress.Progress` (stage ``frames``).

    Returns
    -------
    dict
        ``stream`` (fidelity), ``faces`` (counts, detection survival, SSIM,
        flicker), ``targets`` (per recogniser: share of face-frames still
        matching with its 95 % interval, mean distance) and, with
        ``invader``, ``invader`` (the same for dlib's own pipeline, with the
        smallest distance). Each of these also gives
        ``original_matches_black`` (face-frames whose original matches a
        black frame too), ``still_matches_of_those`` (of them, those still
        matching) and ``still_matches_rest`` with its interval (the share
        over the other face-frames).

    Raises
    ------
    InputError
        Either file is missing or not a video.
    """
    from ..io import open_video
    from ..recognizers import create_recognizer

    if detector is None:
        from ..config import DetectConfig
        from ..detect import FaceDetector

        detector = FaceDetector(DetectConfig(), device)
    recs = {t: create_recognizer(t, device) for t in targets}
    dlib_invader = None
    if invader:
        from .invader import DlibInvader

        dlib_invader = DlibInvader()
    invader_dist: list[float] = []
    invader_blank: list[float] = []  # each original's distance to a black frame's descriptor
    every = max(1, int(every))
    dist: dict[str, list[float]] = {t: [] for t in targets}
    blank: dict[str, list[float]] = {t: [] for t in targets}  # each original's distance to a black frame
    ssim: list[float] = []
    still_detected: list[bool] = []
    flicker, magnitude, background = [], [], []
    times_o, times_p = [], []
    pending: list[_Pending] = []
    n_o = n_p = 0
    checked = 0
    with open_video(original) as src_o, open_video(protected) as src_p:
        info_o, info_p = src_o.info, src_p.info
        total = info_o.frame_count
        it_o, it_p = src_o.frames(), src_p.frames()
        while True:
            fo = next(it_o, None)
            fp = next(it_p, None)
            if fo is not None:
                n_o += 1
                times_o.append(fo.time)
            if fp is not None:
                n_p += 1
                times_p.append(fp.time)
            if fo is None or fp is None:
                # One stream ended: count what is left of the other.
                if fo is not None:
                    times_o += [f.time for f in it_o]
                    n_o = len(times_o)
                elif fp is not None:
                    times_p += [f.time for f in it_p]
                    n_p = len(times_p)
                break
            a, b = fo.image, fp.image
            if a.shape != b.shape:
                raise InputError(f"frame size differs from the original's ({b.shape[:2]} vs {a.shape[:2]})", protected)
            if pending:
                delta = to_float(b).astype(np.float32) - to_float(a).astype(np.float32)
                for pend in pending:
                    d1 = delta[pend.box]
                    flicker.append(float(np.abs(d1 - pend.delta).mean()) * 255.0)
                pending = []
            if fo.index % every == 0:
                checked += 1
                faces = detector.detect([a])[0]
                if len(faces):
                    black = np.zeros_like(a)
                    found = detector.detect([b])[0]
                    delta = to_float(b).astype(np.float32) - to_float(a).astype(np.float32)
                    outside = np.ones(a.shape[:2], bool)
                    for i in range(len(faces)):
                        sl = _box_slices(faces.boxes[i], a.shape[:2])
                        if sl is None:
                            continue
                        outside[sl] = False
                        ssim.append(M.mssim(a[sl], b[sl]))
                        magnitude.append(float(np.abs(delta[sl]).mean()) * 255.0)
                        pending.append(_Pending(sl, delta[sl].copy()))
                        still_detected.append(_matched(faces.boxes[i], found))
                        lm = faces.landmarks[i]
                        if not np.isfinite(lm).all():
                            continue
                        for t, rec in recs.items():
                            ea, eb, e0 = (torch.from_numpy(embed_face(f, lm, rec))[None] for f in (a, b, black))
                            with torch.no_grad():
                                dist[t].append(float(rec.distance(ea, eb)[0]))
                                blank[t].append(float(rec.distance(ea, e0)[0]))
                    if outside.any():
                        background.append(float(np.abs(delta[outside]).mean()) * 255.0)
                if dlib_invader is not None:
                    # dlib reads 8-bit RGB; 10-bit frames are judged as an 8-bit copy would be.
                    a8, b8 = (f if f.dtype == np.uint8 else from_float(to_float(f), np.uint8) for f in (a, b))
                    rects = dlib_invader.detect(a8)
                    invader_dist += dlib_invader.closest(a8, b8, rects).tolist()
                    invader_blank += dlib_invader.blank_distance(a8, rects).tolist()
            progress(Progress("frames", fo.index + 1, total, {"face-frames": len(ssim)}))
            if max_frames is not None and fo.index + 1 >= max_frames:
                break
    audio_o, audio_p = audio_packets(original), audio_packets(protected)
    stream = {
        "frames": [n_o, n_p],
        "frames_equal": n_o == n_p,
        "fps": [str(info_o.fps), str(info_p.fps)],
        "fps_equal": info_o.fps == info_p.fps,
        "size": [[info_o.width, info_o.height], [info_p.width, info_p.height]],
        "size_equal": (info_o.width, info_o.height) == (info_p.width, info_p.height),
        "timestamps_equal": len(times_o) == len(times_p)
        and all(x is not None and y is not None and abs(x - y) < 1e-3 for x, y in zip(times_o, times_p)),
        "audio": {
            "streams": [len(audio_o), len(audio_p)],
            "packets": [sum(map(len, audio_o)), sum(map(len, audio_p))],
            "identical": audio_o == audio_p,
        },
        "checked_frames_limited": max_frames is not None,
    }
    out_targets = {}
    for t, rec in recs.items():
        d = np.asarray(dist[t], np.float64)
        out_targets[t.partition(":")[0]] = {
            **_matches(d, np.asarray(blank[t], np.float64), float(rec.cfg.threshold)),
            "mean_distance": float(d.mean()) if len(d) else None,
        }
    faces_out = {
        "frames_checked": checked,
        "every": every,
        "face_frames": len(ssim),
        "still_detected": M.rate(still_detected),
        "ssim_mean": float(np.mean(ssim)) if ssim else None,
        "ssim_min": float(np.min(ssim)) if ssim else None,
        "perturbation_mean_abs": float(np.mean(magnitude)) if magnitude else None,
        "flicker_mean_abs": float(np.mean(flicker)) if flicker else None,
        "background_change_mean_abs": float(np.mean(background)) if background else None,
    }
    report = {"original": str(original), "protected": str(protected), "stream": stream, "faces": faces_out, "targets": out_targets}
    if dlib_invader is not None:
        d = np.asarray(invader_dist, np.float64)
        report["invader"] = {
            "pipeline": "dlib CNN face detector + 5-point predictor + ResNet (vdeid's ports)",
            **_matches(d, np.asarray(invader_blank, np.float64), dlib_invader.THRESHOLD),
            "min_distance": float(d.min()) if len(d) else None,
        }
    return report


def _matches(d: np.ndarray, blank: np.ndarray, thr: float) -> dict:
    """Share of face-frames still matching, over all and over those whose original is not blank-like.

    ``d`` holds each face-frame's distance from its original, ``blank`` the
    original's distance to the same recogniser's descriptor of a black frame
    there. A face-frame with ``blank < thr`` is one the recogniser cannot tell
    from an empty frame: a solid mask "matches" it too, so its match says
    nothing about who it is. Both shares are reported, never only the second.
    """
    like = blank < thr
    rest = d[~like]
    return {
        "threshold": thr,
        "face_frames": int(len(d)),
        "still_matches": M.rate(d < thr),
        "still_matches_ci": list(M.wilson_interval(int((d < thr).sum()), len(d))),
        "original_matches_black": int(like.sum()),
        "still_matches_of_those": int((d[like] < thr).sum()),
        "still_matches_rest": M.rate(rest < thr),
        "still_matches_rest_ci": list(M.wilson_interval(int((rest < thr).sum()), len(rest))),
    }


def _matched(box: np.ndarray, found: Faces) -> bool:
    for b in found.boxes:
        x0, y0 = max(box[0], b[0]), max(box[1], b[1])
        x1, y1 = min(box[2], b[2]), min(box[3], b[3])
        inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
        union = (box[2] - box[0]) * (box[3] - box[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        if union > 0 and inter / union >= 0.3:
            return True
    return False
