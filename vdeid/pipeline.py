"""``process_video``: decode → detect → track → protect → composite → encode.

Frames stream through bounded stages (a detection batch, the tracker's
look-ahead, a protection chunk), so memory does not grow with the length of
the video.
"""

from __future__ import annotations

import logging
import time
from contextlib import closing
from dataclasses import replace
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator, Optional

from .concurrency import BackgroundConsumer, prefetch, timed
from .config import Config, resolve_device
from .detect import FaceDetector
from .faces import Faces
from .io import VideoSink, open_video
from .methods.base import FaceOutcome, Method
from .methods.registry import create_method
from .progress import Progress, ProgressCallback, no_progress
from .report import Report, StageTimer
from .track import track_faces

logger = logging.getLogger(__name__)


def process_video(
    input_path: str | Path,
    output_path: str | Path,
    config: Optional[Config] = None,
    *,
    progress: ProgressCallback = no_progress,
    report_path: str | Path | None = None,
) -> Report:
    """Protect every face of a video and write the result.

    Parameters
    ----------
    input_path : str or Path
        Any video PyAV can read. Never modified.
    output_path : str or Path
        Where to write; the container follows the suffix. Written
        atomically: nothing is left there if the run fails or is interrupted.
    config : Config, optional
        Method, detection, tracking, attack and encoding options.
    progress : callable, optional
        Receives a :class:`~vdeid.progress.Progress` after every chunk.
    report_path : str or Path, optional
        Also write the :class:`~vdeid.report.Report` there as JSON.

    Returns
    -------
    Report
        Frame and face counts, fallbacks, attack iterations, stage timings.

    Raises
    ------
    InputError
        The input is missing, not a video, corrupt or has no frames.
    OutputError
        The output exists (without ``overwrite``), is the input, or cannot be
        written.
    """
    config = config or Config()
    device = resolve_device(config.device)
    started = time.perf_counter()
    timer = StageTimer()
    with open_video(input_path) as source:
        info = source.info
        report = Report(
            input=str(input_path),
            output=str(output_path),
            config=config.to_dict(),
            device=device,
            video={"width": info.width, "height": info.height, "fps": str(info.fps), "frames": info.frame_count},
        )
        detector = FaceDetector(config.detect, device)
        method = create_method(config.method, replace(config, device=device))
        fallback = _fallback_for(method, config, device)
        queued = 2 * max(config.chunk_frames, config.detect.batch_size)
        decode_clock = [0.0]
        with VideoSink(output_path, source, config.encode, overwrite=config.overwrite) as sink:
            # closing() stops the decode thread before the container closes, on any exit.
            reading = prefetch(timed(source.frames(), decode_clock), size=queued, name="vdeid-decode")
            with closing(reading), BackgroundConsumer(sink.write, size=queued, name="vdeid-encode") as writer:
                decoded = timer.wrap("wait_decode", reading)
                detected = _detect_stream(decoded, detector, config, timer)
                tracked = timer.wrap("track", track_faces(detected, config.track, get_image=lambda f: f.image))
                done = 0
                for chunk in _chunks(tracked, config.chunk_frames):
                    frames = [f for f, _ in chunk]
                    faces = [fa for _, fa in chunk]
                    with timer.time("protect"):
                        images, outcomes = protect_chunk(method, fallback, [f.image for f in frames], faces, report)
                    report.add_outcomes(outcomes, method.name)
                    report.faces_per_frame.extend(len(fa) for fa in faces)
                    report.detected_per_frame.extend(int(fa.detected.sum()) for fa in faces)
                    with timer.time("wait_encode"):
                        for frame, image in zip(frames, images):
                            writer.submit(replace(frame, image=image))
                    done += len(chunk)
                    progress(
                        Progress(
                            "frames", done, info.frame_count, {"faces": report.faces, "fallback": report.fallback}
                        )
                    )
                with timer.time("wait_encode"):
                    writer.close()
            with timer.time("finish"):
                sink.close()
            report.notes.extend(sink.notes)
    report.timings = dict(timer.seconds)
    # Decode and encode overlap the main thread: their busy times are
    # measured on their own threads and do not add up to the total.
    report.timings["decode"] = decode_clock[0]
    report.timings["encode"] = writer.busy_seconds
    report.timings["total"] = time.perf_counter() - started
    if report.fallback:
        logger.warning("%s: %d face(s) needed the fallback method", input_path, report.fallback)
    if report_path is not None:
        report.write(report_path)
    return report


def protect_chunk(
    method: Method,
    fallback: Optional[Method],
    images: list,
    faces: list[Faces],
    report: Report,
) -> tuple[list, list[FaceOutcome]]:
    """Run ``method`` on one chunk, failing closed.

    If the method raises, the chunk is protected with ``fallback`` instead
    (and the event is noted in ``report``), so an engine failure never ships
    an unprotected face. A method that returns fewer outcomes than faces is
    a bug and stops the run rather than risk a leak.
    """
    try:
        out, outcomes = method.protect(images, faces)
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 -- any engine failure must fall back, not leak
        if fallback is None:
            raise
        logger.warning("method %s failed on a chunk (%s); using %s", method.name, exc, fallback.name)
        report.notes.append(f"{method.name} failed on a chunk ({type(exc).__name__}: {exc}); used {fallback.name}")
        out, outcomes = fallback.protect(images, faces)
    expected = sum(len(f) for f in faces)
    if len(outcomes) != expected or not all(o.protected for o in outcomes):
        raise RuntimeError(f"method {method.name} did not protect every face ({len(outcomes)} of {expected})")
    return out, outcomes


def _fallback_for(method: Method, config: Config, device: str) -> Optional[Method]:
    if method.name == config.attack.fallback:
        return None
    return create_method(config.attack.fallback, replace(config, device=device))


def _detect_stream(frames: Iterable, detector: FaceDetector, config: Config, timer: StageTimer) -> Iterator:
    """Yield ``(frame, Faces | None)``; None where the detector was skipped (``detect_every``)."""
    every = max(1, int(config.track.detect_every))
    for batch in _chunks(frames, config.detect.batch_size):
        due = [f for f in batch if f.index % every == 0]
        with timer.time("detect"):
            found = iter(detector.detect([f.image for f in due]))
        for f in batch:
            yield f, (next(found) if f.index % every == 0 else None)


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while chunk := list(islice(it, max(1, int(size)))):
        yield chunk
