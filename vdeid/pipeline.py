"""``process_video``: decode → detect → track → protect → composite → encode.

Frames stream through bounded stages (a detection batch, the tracker's
look-ahead, a protection chunk), so memory does not grow with the length of
the video. Optional side outputs: the faces as a tracks file (``tracks_out``)
and a review video with the regions drawn on (``preview``); a tracks file
can also replace detection and tracking (``tracks_in``).
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack, closing
from dataclasses import replace
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator, Optional

from .concurrency import BackgroundConsumer, prefetch, timed
from .config import Config, resolve_device
from .detect import FaceDetector
from .detect.tiling import Detector, create_detector
from .errors import InputError, OutputError
from .faces import Faces
from .io import VideoSink, open_video
from .io.video_sink import container_format
from .io.atomic import check_output_path
from .methods.base import FaceOutcome, Method
from .methods.registry import create_fallback, create_method
from .progress import Progress, ProgressCallback, no_progress
from .report import Report, StageTimer
from .track import TrackRecorder, Tracks, read_tracks, track_faces
from .track.preview import draw_tracks

logger = logging.getLogger(__name__)


def process_video(
    input_path: str | Path,
    output_path: str | Path,
    config: Optional[Config] = None,
    *,
    progress: ProgressCallback = no_progress,
    report_path: str | Path | None = None,
    tracks_out: str | Path | None = None,
    tracks_in: str | Path | None = None,
    preview: str | Path | None = None,
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
    tracks_out : str or Path, optional
        Also write the protected faces of every frame there as a tracks JSON
        file (:mod:`vdeid.track.tracks_io`): per track its frames, boxes,
        landmarks, scores and whether each box was detected or predicted,
        and per face the method whose pixels shipped (the fallback's where
        the attack missed, and why), its iterations and its recogniser
        distance.
    tracks_in : str or Path, optional
        Protect the faces of this tracks file instead of detecting and
        tracking (a reviewer's corrected ``tracks_out``). The video must be
        the one the file was made from: same frame size and frame count.
        With the same method and options, the output is the same as the run
        that exported the file.
    preview : str or Path, optional
        Also write a review video there: the protected frames with every
        protected region outlined, its track id, and boxes the detector did
        not see (bridged, interpolated, back-filled) in another colour (see
        :func:`vdeid.track.preview.draw_tracks`). Written atomically, with
        the same encoder options as the output.

    Returns
    -------
    Report
        Frame and face counts, fallbacks, attack iterations, stage timings.

    Raises
    ------
    InputError
        The input is missing, not a video, corrupt or has no frames; or
        ``tracks_in`` is unreadable, malformed, or made for another video.
    OutputError
        An output (video, ``tracks_out``, ``preview``) exists (without
        ``overwrite``), is an input or another output, or cannot be written.
    """
    config = config or Config()
    device = resolve_device(config.device)
    started = time.perf_counter()
    timer = StageTimer()
    find_timer = StageTimer()  # the detection thread's own: a StageTimer serves one thread
    _check_outputs(config, input_path, output_path, tracks_in=tracks_in, tracks_out=tracks_out, preview=preview)
    tracks = read_tracks(tracks_in) if tracks_in is not None else None
    with open_video(input_path) as source:
        info = source.info
        report = Report(
            input=str(input_path),
            output=str(output_path),
            config=config.to_dict(),
            device=device,
            video={"width": info.width, "height": info.height, "fps": str(info.fps), "frames": info.frame_count},
        )
        frame_size = (info.width, info.height)
        if tracks is not None:
            _check_tracks_fit(tracks, frame_size, tracks_in)
            report.notes.append(f"faces read from {tracks_in}; detection and tracking skipped")
        else:
            detector = create_detector(config.detect, device, frame_size, small_faces=config.track.small_faces)
            if not isinstance(detector, FaceDetector):
                report.notes.append(f"small faces: tiled detection, {detector!r}")
        method = create_method(config.method, replace(config, device=device))
        fallback = _fallback_for(method, config, device)
        recorder = TrackRecorder(frame_size=frame_size) if tracks_out is not None else None
        queued = 2 * max(config.chunk_frames, config.detect.batch_size)
        decode_clock = [0.0]
        with ExitStack() as outputs:
            sink = outputs.enter_context(VideoSink(output_path, source, config.encode, overwrite=config.overwrite))
            if hasattr(method, "round_trip"):
                # The encoder takes some distance off: adversarial faces aim
                # further (video_margin) and are judged on what it keeps.
                method.round_trip = sink.round_trip()
                if config.attack.encoder_check:
                    encoder = method.round_trip.settings.encoder
                    report.notes.append(f"faces judged after an in-memory round trip through {encoder}")
            review = None
            if preview is not None:
                review = outputs.enter_context(VideoSink(preview, source, config.encode, overwrite=config.overwrite))

            def write(item: tuple) -> None:
                # Runs on the encode thread, which also draws the preview.
                frame, faces = item
                sink.write(frame)
                if review is not None:
                    image = draw_tracks(frame.image, faces, margin=config.detect.box_margin, frame_index=frame.index)
                    review.write(replace(frame, image=image))

            # closing() stops the decode thread before the container closes, on any exit.
            reading = prefetch(timed(source.frames(), decode_clock), size=queued, name="vdeid-decode")
            with closing(reading), BackgroundConsumer(
                write, size=queued, name="vdeid-encode"
            ) as writer, ExitStack() as finders:
                if tracks is not None:
                    tracked = _replay_tracks(timer.wrap("wait_decode", reading), tracks, tracks_in)
                else:
                    # Detection and tracking run on their own thread, a chunk
                    # ahead, so the attack (on a GPU) is not idle while the
                    # next chunk's faces are found. Closed before the decoder.
                    finding = prefetch(
                        _find_faces(reading, detector, config, find_timer), size=config.chunk_frames, name="vdeid-detect"
                    )
                    tracked = timer.wrap("wait_detect", finders.enter_context(closing(finding)))
                done = 0
                for chunk in _chunks(tracked, config.chunk_frames):
                    frames = [f for f, _ in chunk]
                    faces = [fa for _, fa in chunk]
                    with timer.time("protect"):
                        images, outcomes = protect_chunk(method, fallback, [f.image for f in frames], faces, report)
                    report.add_outcomes(outcomes, method.name)
                    report.faces_per_frame.extend(len(fa) for fa in faces)
                    report.detected_per_frame.extend(int(fa.detected.sum()) for fa in faces)
                    if recorder is not None:
                        for t, (frame, fa) in enumerate(zip(frames, faces)):
                            mine = [o for o in outcomes if o.frame == t]  # in face order
                            recorder.add(fa, frame_index=frame.index, outcomes=mine)
                    with timer.time("wait_encode"):
                        for frame, image, fa in zip(frames, images, faces):
                            writer.submit((replace(frame, image=image), fa))
                    done += len(chunk)
                    progress(
                        Progress(
                            "frames", done, info.frame_count, {"faces": report.faces, "fallback": report.fallback}
                        )
                    )
                with timer.time("wait_encode"):
                    writer.close()
            with timer.time("finish"):
                # The main output is published last: if a side output fails, it is not written either.
                if review is not None:
                    review.close()
                if recorder is not None:
                    recorder.save(tracks_out)
                sink.close()
            report.notes.extend(sink.notes)
    report.timings = dict(timer.seconds + find_timer.seconds)
    # Decode, detection with tracking, and encode overlap the main thread:
    # their times are measured on their own threads and do not add up to the total.
    report.timings["decode"] = decode_clock[0]
    report.timings["encode"] = writer.busy_seconds  # with the preview's drawing and encoding
    report.timings["total"] = time.perf_counter() - started
    if report.fallback:
        logger.warning(
            "%s: %d face(s) needed the fallback method (%s)", input_path, report.fallback, report.fallback_breakdown()
        )
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
        outcomes = [replace(o, fallback_reason="error") for o in outcomes]
    expected = sum(len(f) for f in faces)
    if len(outcomes) != expected or not all(o.protected for o in outcomes):
        raise RuntimeError(f"method {method.name} did not protect every face ({len(outcomes)} of {expected})")
    return out, outcomes


def _fallback_for(method: Method, config: Config, device: str) -> Optional[Method]:
    if method.name == config.attack.fallback:
        return None
    return create_fallback(replace(config, device=device))


def _check_outputs(config: Config, input_path, output_path, *, tracks_in, tracks_out, preview) -> None:
    """Refuse, before any work, outputs that clash with an input or with each other."""
    inputs = [p for p in (input_path, tracks_in) if p is not None]
    check_output_path(output_path, overwrite=config.overwrite, inputs=inputs)
    taken = [Path(output_path).resolve()]
    for name, path in (("tracks_out", tracks_out), ("preview", preview)):
        if path is None:
            continue
        if Path(path).resolve() in taken:
            raise OutputError(f"{name} names the same file as another output; choose another name", path)
        check_output_path(path, overwrite=config.overwrite, inputs=inputs)
        taken.append(Path(path).resolve())
    if preview is not None:
        container_format(preview)


def _check_tracks_fit(tracks: Tracks, frame_size: tuple[int, int], path) -> None:
    """Refuse a tracks file recorded on frames of another size."""
    if tracks.frame_size is not None and tuple(tracks.frame_size) != tuple(frame_size):
        w, h = tracks.frame_size
        raise InputError(
            f"the tracks were recorded on {w}x{h} frames but the video is {frame_size[0]}x{frame_size[1]};"
            " use the tracks file exported from this video", path
        )


def _replay_tracks(frames: Iterable, tracks: Tracks, path) -> Iterator:
    """Yield ``(frame, Faces)`` from a tracks file; the frame counts must match.

    A video longer than the file would have frames without faces to
    protect, so any mismatch stops the run (the output is then not written).
    """
    count = 0
    for frame in frames:
        if frame.index >= tracks.n_frames:
            raise InputError(
                f"the tracks cover {tracks.n_frames} frames but the video has more;"
                " use the tracks file exported from this video", path
            )
        count = frame.index + 1
        yield frame, tracks.faces(frame.index)
    if count != tracks.n_frames:
        raise InputError(
            f"the tracks cover {tracks.n_frames} frames but the video has {count};"
            " use the tracks file exported from this video", path
        )


def _find_faces(frames: Iterable, detector: Detector, config: Config, timer: StageTimer) -> Iterator:
    """Yield ``(frame, Faces)``: the tracked faces of every frame (the detection thread's work)."""
    detected = _detect_stream(timer.wrap("wait_decode", frames), detector, config, timer)
    yield from timer.wrap("track", track_faces(detected, config.track, get_image=lambda f: f.image))


def _detect_stream(frames: Iterable, detector: Detector, config: Config, timer: StageTimer) -> Iterator:
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
