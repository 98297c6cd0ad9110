"""Decode a video file frame by frame with PyAV.

:func:`open_video` checks the input once and turns every way it can be
unusable (missing, not media, truncated, no video, no frames) into one
:class:`~vdeid.errors.InputError` line. :meth:`VideoSource.frames` then
streams RGB frames through one persistent decoder (``thread_type="AUTO"``),
so memory stays bounded whatever the length of the video. Corrupt packets are
skipped and counted, and decoding stops only after too many in a row
(PySceneDetect's habit).
"""

from __future__ import annotations

import itertools
import logging
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional

import av
import numpy as np
from av.sidedata.sidedata import Type as SideDataType
from av.video.reformatter import Interpolation, VideoReformatter

from ..errors import InputError

log = logging.getLogger(__name__)

# Warnings logged one by one before the rest are only counted.
_WARN_FIRST = 5

# Frames looked at before choosing between pts and dts (_PtsGuesser).
_PTS_WINDOW = 8

# YUV -> RGB scaler flags. swscale's fast default darkens 4:2:0 video by
# about one level per decode/encode round trip; accurate rounding with full
# chroma interpolation makes the round trip unbiased (docs/video-io.md).
# FULL_CHR_H_INT is wrong for 16-bit RGB output from 4:2:0, hence two sets.
DECODE_FLAGS_8BIT = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
DECODE_FLAGS_16BIT = Interpolation.BICUBIC | Interpolation.ACCURATE_RND

#: RGB -> YUV with accurate rounding (the sink and the encoder round trip):
#: the inverse of the DECODE_FLAGS.
ENCODE_FLAGS = Interpolation.BICUBIC | Interpolation.ACCURATE_RND


@dataclass(frozen=True)
class AudioStreamInfo:
    """Summary of one audio stream of the input.

    Attributes
    ----------
    index : int
        Stream index in the input container.
    codec : str
        Codec name (``"aac"``, ``"mp3"``...).
    sample_rate : int
        Samples per second.
    channels : int
        Number of channels.
    layout : str
        Channel layout name (``"stereo"``...).
    duration : float or None
        Length in seconds, when the container says.
    language : str or None
        ``language`` tag.
    """

    index: int
    codec: str
    sample_rate: int
    channels: int
    layout: str
    duration: Optional[float]
    language: Optional[str]


@dataclass(frozen=True)
class StreamInfo:
    """Summary of a subtitle, data, attachment or extra video stream.

    Attributes
    ----------
    index : int
        Stream index in the input container.
    type : str
        ``"subtitle"``, ``"data"``, ``"attachment"``, ``"video"`` (an extra
        video stream or cover picture) or ``"unknown"``.
    codec : str or None
        Codec name where FFmpeg knows one.
    tags : dict of str to str
        Stream-level tags.
    """

    index: int
    type: str
    codec: Optional[str]
    tags: dict = field(default_factory=dict)


@dataclass(frozen=True)
class VideoInfo:
    """What the input video stream is, as read when it was opened.

    Attributes
    ----------
    path : Path
        The input file.
    container : str
        FFmpeg demuxer name (``"mov,mp4,m4a,3gp,3g2,mj2"``, ``"avi"``...).
    stream_index : int
        Index of the video stream in the container.
    width, height : int
        Decoded frame size in pixels (before any display rotation).
    fps : Fraction
        Average frame rate (``average_rate``, else FFmpeg's guess).
    variable_rate : bool
        The average rate differs from the stream's base rate: frames have
        different durations (phone recordings, screen captures).
    time_base : Fraction
        Unit of :attr:`DecodedFrame.pts`, in seconds.
    frame_count : int or None
        Frames announced by the container, ``None`` when it does not say
        (Matroska). The decoded count can differ.
    duration : float or None
        Stream (else container) duration in seconds.
    start_time : float or None
        Presentation time of the first frame in seconds.
    codec : str
        Input codec name (``"h264"``, ``"hevc"``, ``"mpeg4"``...).
    pix_fmt : str
        Decoded pixel format (``"yuv420p"``, ``"yuv420p10le"``...).
    bit_depth : int
        Bits per sample of the luma plane (8, 10, 12...).
    rotation : int
        Counter-clockwise degrees a player rotates the picture by, from the
        display matrix; 0 when there is none.
    display_matrix : tuple of int or None
        The 9 raw ``int32`` values of FFmpeg's display matrix (rotation and
        flips), copied verbatim to the output; ``None`` when absent.
    sample_aspect_ratio : Fraction or None
        Pixel aspect ratio (``None`` or 1 for square pixels).
    color_range, color_space, color_primaries, color_trc : int
        FFmpeg's ``AVColorRange``, ``AVColorSpace`` (YUV matrix),
        ``AVColorPrimaries`` and ``AVColorTransferCharacteristic`` values
        (2 = unspecified for the last three, 0 for the range).
    tags : dict of str to str
        Container-level tags.
    video_tags : dict of str to str
        Video-stream tags.
    audio : tuple of AudioStreamInfo
        Every audio stream.
    other_streams : tuple of StreamInfo
        Subtitle, data, attachment and extra video streams.
    """

    path: Path
    container: str
    stream_index: int
    width: int
    height: int
    fps: Fraction
    time_base: Fraction
    frame_count: Optional[int]
    duration: Optional[float]
    start_time: Optional[float]
    codec: str
    pix_fmt: str
    bit_depth: int
    rotation: int
    display_matrix: Optional[tuple]
    sample_aspect_ratio: Optional[Fraction]
    color_range: int
    color_space: int
    color_primaries: int
    color_trc: int
    tags: dict
    video_tags: dict
    audio: tuple = ()
    other_streams: tuple = ()
    variable_rate: bool = False

    @property
    def dtype(self) -> np.dtype:
        """Image dtype of decoded frames: uint8, or uint16 above 8 bits."""
        return np.dtype(np.uint16 if self.bit_depth > 8 else np.uint8)


@dataclass(frozen=True)
class DecodedFrame:
    """One decoded frame and its presentation timestamp.

    Attributes
    ----------
    index : int
        Position in decode output order, from 0.
    image : ndarray
        ``(H, W, 3)`` RGB, uint8 in [0, 255]; or uint16 in [0, 65535]
        (``rgb48``) when the input has more than 8 bits per sample.
    pts : int or None
        Presentation timestamp in :attr:`time_base` units.
    time_base : Fraction
        Seconds per ``pts`` unit.
    duration : int or None
        How long the frame is shown, in :attr:`time_base` units, when the
        container says (variable frame rate: the last frame's duration sets
        the stream's length and so its average rate).

    Use :func:`dataclasses.replace` (``replace(frame, image=new)``) to hand a
    processed image to :meth:`VideoSink.write` with the original timing.
    """

    index: int
    image: np.ndarray
    pts: Optional[int]
    time_base: Fraction
    duration: Optional[int] = None

    @property
    def time(self) -> Optional[float]:
        """Presentation time in seconds, ``None`` when the frame has no pts."""
        return None if self.pts is None else float(self.pts * self.time_base)


def _display_matrix(frame: av.VideoFrame) -> Optional[tuple]:
    """Raw display matrix attached to a decoded frame, if any."""
    for side_data in frame.side_data:
        if side_data.type == SideDataType.DISPLAYMATRIX:
            return tuple(int(v) for v in np.frombuffer(bytes(side_data), dtype=np.int32)[:9])
    return None


def _seconds(value, time_base) -> Optional[float]:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def _ebml_vint(data: bytes, pos: int, *, keep_marker: bool = False) -> tuple[Optional[int], int]:
    """Read a Matroska variable-length integer; ``(None, end)`` for "unknown"."""
    first = data[pos]
    length = 8 - first.bit_length() + 1
    if not 1 <= length <= 8 or pos + length > len(data):
        raise ValueError("bad EBML integer")
    value = int.from_bytes(data[pos : pos + length], "big")
    if keep_marker:
        return value, pos + length
    value &= (1 << (7 * length)) - 1
    return (None if value == (1 << (7 * length)) - 1 else value), pos + length


def _declared_end(path: Path) -> Optional[int]:
    """File size the container header announces (AVI RIFF, Matroska segment)."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if head[:4] == b"RIFF" and len(head) >= 8:
        return int.from_bytes(head[4:8], "little") + 8
    if head[:4] == b"\x1a\x45\xdf\xa3":
        size, pos = _ebml_vint(head, 4)
        pos += size or 0
        element, pos = _ebml_vint(head, pos, keep_marker=True)
        if element != 0x18538067:  # Segment
            return None
        size, pos = _ebml_vint(head, pos)
        return None if size is None else pos + size
    return None


def _truncated(container: av.container.InputContainer, path: Path) -> bool:
    """True when the file is shorter than its own header or index says.

    MP4/MOV read their sample index up front; a copy cut short keeps the
    index but loses the samples, and FFmpeg would only notice frame by frame.
    AVI and Matroska announce their total size in the first bytes.
    """
    try:
        size = os.path.getsize(path)
        declared = _declared_end(path)
        if declared is not None and size < declared:
            return True
        last = 0
        for s in container.streams:
            entries = s.index_entries
            if len(entries):
                last = max(last, max(entry.pos + entry.size for entry in entries))
    except (OSError, AttributeError, ValueError, IndexError):
        return False
    return last > size


class _PtsGuesser:
    """FFmpeg's ``guess_correct_pts`` (``AVFrame.best_effort_timestamp``).

    AVI files with packed B-frames carry decode-order stamps as "pts"; when
    the pts go backwards more often than the dts, the dts are the right
    presentation times.
    """

    def __init__(self):
        self.faulty_pts = self.faulty_dts = 0
        self.last_pts = self.last_dts = None

    def __call__(self, pts: Optional[int], dts: Optional[int]) -> Optional[int]:
        if dts is not None:
            self.faulty_dts += self.last_dts is not None and dts <= self.last_dts
            self.last_dts = dts
        elif pts is not None:
            self.last_dts = pts
        if pts is not None:
            self.faulty_pts += self.last_pts is not None and pts <= self.last_pts
            self.last_pts = pts
        elif dts is not None:
            self.last_pts = dts
        if pts is not None and (self.faulty_pts <= self.faulty_dts or dts is None):
            return pts
        return dts


class VideoSource:
    """An opened input video; iterate :meth:`frames` once to decode it.

    Prefer :func:`open_video`. Use as a context manager (or call
    :meth:`close`) to release the file.

    Parameters
    ----------
    path : str or Path
        Input video file.
    max_decode_errors : int
        Consecutive corrupt packets tolerated before decoding stops with an
        :class:`~vdeid.errors.InputError`.

    Attributes
    ----------
    path : Path
        The input file.
    info : VideoInfo
        Stream properties read at open time.
    decode_errors : int
        Corrupt packets skipped so far.
    """

    def __init__(self, path: str | Path, *, max_decode_errors: int = 20):
        self.path = Path(path)
        self.max_decode_errors = max_decode_errors
        self.decode_errors = 0
        self._container = None
        self._frames_started = False
        self._reformatter = VideoReformatter()
        self._container = self._open_container()
        try:
            self._stream = self._pick_video_stream()
            self._stream.thread_type = "AUTO"
            # One persistent demux/decode generator (PySceneDetect): the first
            # frame is decoded now to prove the file has one and to read what
            # only frames carry (display matrix, colour tags).
            self._decoded = self._decode()
            try:
                first = next(self._decoded)
            except StopIteration:
                raise InputError("has no video frames (empty or truncated video stream)", self.path) from None
            self._first: Optional[av.VideoFrame] = first
            self.info = self._read_info(first)
        except BaseException:
            self.close()
            raise

    # -- opening ---------------------------------------------------------
    def _open_container(self):
        path = self.path
        if not path.exists():
            raise InputError("file not found; check the path", path)
        if path.is_dir():
            raise InputError("is a folder, not a video file", path)
        if os.path.getsize(path) == 0:
            raise InputError("is an empty file (0 bytes), not a video", path)
        try:
            return av.open(str(path), "r")
        except PermissionError as ex:
            raise InputError("cannot be read: permission denied", path) from ex
        except (av.FFmpegError, OSError, UnicodeDecodeError) as ex:
            reason = getattr(ex, "strerror", None) or str(ex)
            raise InputError(
                f"not a readable video file ({reason}); it may be truncated, corrupt or not a video", path
            ) from ex

    def _pick_video_stream(self):
        container = self._container
        videos = [
            s for s in container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)
        ]
        if not videos:
            kinds = sorted({s.type for s in container.streams})
            if not kinds:
                raise InputError("has no streams at all (an empty media file); give a video file", self.path)
            raise InputError(f"has no video stream (found: {', '.join(kinds)}); give a video file", self.path)
        stream = videos[0]
        if _truncated(container, self.path):
            raise InputError("is truncated (shorter than its header or index says); use a complete copy", self.path)
        return stream

    def _read_info(self, first: av.VideoFrame) -> VideoInfo:
        container, stream = self._container, self._stream
        ctx = stream.codec_context
        time_base = stream.time_base or Fraction(1, 90000)
        fps = stream.average_rate or stream.guessed_rate or stream.base_rate or Fraction(25)
        pix_fmt = (ctx.format.name if ctx.format is not None else None) or first.format.name
        bit_depth = max(c.bits for c in av.VideoFormat(pix_fmt).components)
        matrix = _display_matrix(first)
        duration = _seconds(stream.duration, time_base)
        if duration is None and container.duration is not None:
            duration = container.duration / av.time_base
        sar = stream.sample_aspect_ratio
        audio = []
        others = []
        for s in container.streams:
            if s is stream:
                continue
            if s.type == "audio":
                actx = s.codec_context
                audio.append(
                    AudioStreamInfo(
                        index=s.index,
                        codec=actx.codec.canonical_name,
                        sample_rate=int(actx.sample_rate or 0),
                        channels=int(actx.channels or 0),
                        layout=actx.layout.name,
                        duration=_seconds(s.duration, s.time_base),
                        language=s.metadata.get("language"),
                    )
                )
            else:
                other = s.codec_context
                codec = other.codec.canonical_name if other is not None else getattr(s, "name", None)
                others.append(StreamInfo(index=s.index, type=s.type, codec=codec, tags=dict(s.metadata)))

        def colour(stream_value, frame_value, unspecified):
            return int(stream_value) if stream_value not in (None, unspecified) else int(frame_value)

        return VideoInfo(
            path=self.path,
            container=container.format.name,
            stream_index=stream.index,
            width=int(ctx.width or first.width),
            height=int(ctx.height or first.height),
            fps=Fraction(fps),
            variable_rate=bool(stream.average_rate and stream.base_rate and stream.average_rate != stream.base_rate),
            time_base=Fraction(time_base),
            frame_count=int(stream.frames) if stream.frames else None,
            duration=duration,
            start_time=_seconds(stream.start_time, time_base),
            codec=ctx.codec.canonical_name,
            pix_fmt=pix_fmt,
            bit_depth=int(bit_depth),
            rotation=int(round(first.rotation)) % 360 if matrix is not None else 0,
            display_matrix=matrix,
            sample_aspect_ratio=Fraction(sar) if sar else None,
            color_range=colour(ctx.color_range, first.color_range, 0),
            color_space=colour(ctx.colorspace, first.colorspace, 2),
            color_primaries=colour(ctx.color_primaries, first.color_primaries, 2),
            color_trc=colour(ctx.color_trc, first.color_trc, 2),
            tags=dict(container.metadata),
            video_tags=dict(stream.metadata),
            audio=tuple(audio),
            other_streams=tuple(others),
        )

    # -- decoding --------------------------------------------------------
    def _skip(self, ex: Exception, consecutive: int) -> None:
        self.decode_errors += 1
        if self.decode_errors <= _WARN_FIRST:
            log.warning("%s: skipped corrupt video data (%s)", self.path, ex)
        elif self.decode_errors == _WARN_FIRST + 1:
            log.warning("%s: more corrupt video data; further skips are only counted", self.path)
        if consecutive > self.max_decode_errors:
            raise InputError(
                f"too much corrupt video data ({consecutive} bad packets in a row); the file is damaged",
                self.path,
            ) from ex

    def _decode(self) -> Iterator[av.VideoFrame]:
        """Yield decoded frames, skipping corrupt packets."""
        consecutive = 0
        demuxer = self._container.demux(self._stream)
        while True:
            try:
                packet = next(demuxer)
            except StopIteration:
                return
            except av.EOFError:
                return
            except av.FFmpegError as ex:
                # A read error kills the generator; a new one resumes at the
                # current file position.
                consecutive += 1
                self._skip(ex, consecutive)
                demuxer = self._container.demux(self._stream)
                continue
            try:
                frames = packet.decode()
            except av.EOFError:
                return
            except av.FFmpegError as ex:
                consecutive += 1
                self._skip(ex, consecutive)
                continue
            consecutive = 0
            yield from frames

    def frames(self) -> Iterator[DecodedFrame]:
        """Decode the video once, in presentation order.

        Yields
        ------
        DecodedFrame
            ``image`` is ``(H, W, 3)`` RGB uint8 in [0, 255] (uint16 in
            [0, 65535] for >8-bit input), ``H, W = info.height, info.width``.

        Raises
        ------
        InputError
            Too much corrupt data in a row.
        RuntimeError
            Called a second time: the decoder is single-pass.
        """
        if self._frames_started:
            raise RuntimeError("VideoSource.frames() can be iterated only once; open the video again")
        self._frames_started = True
        return self._frame_records()

    def _frame_records(self) -> Iterator[DecodedFrame]:
        info = self.info
        fmt = "rgb48le" if info.bit_depth > 8 else "rgb24"
        flags = DECODE_FLAGS_16BIT if info.bit_depth > 8 else DECODE_FLAGS_8BIT
        step = max(1, round(1 / (info.fps * info.time_base))) if info.fps else 1
        last_pts: Optional[int] = None
        resized_warned = False
        index = 0
        pending = [self._first] if self._first is not None else []
        self._first = None

        def decoded():
            yield from pending
            yield from self._decoded

        # Decide pts-vs-dts on a few frames before the first is yielded, so
        # the frames before the first out-of-order pts get the right stamp.
        stream = decoded()
        head = list(itertools.islice(stream, _PTS_WINDOW))
        guess = _PtsGuesser()
        for frame in head:
            guess(frame.pts, frame.dts)
        guess.last_pts = guess.last_dts = None
        for frame in itertools.chain(head, stream):
            pts = guess(frame.pts, frame.dts)
            if pts is None:
                # Containers without timestamps (raw streams): continue at the nominal rate.
                pts = 0 if last_pts is None else last_pts + step
            last_pts = pts
            if frame.width != info.width or frame.height != info.height:
                if not resized_warned:
                    log.warning(
                        "%s: frame size changes mid-stream (%dx%d -> %dx%d); scaling back to the first size",
                        self.path, info.width, info.height, frame.width, frame.height,
                    )
                    resized_warned = True
                frame = frame.reformat(width=info.width, height=info.height)
            image = self._reformatter.reformat(frame, format=fmt, interpolation=flags).to_ndarray()
            yield DecodedFrame(
                index=index, image=image, pts=int(pts), time_base=info.time_base, duration=frame.duration or None
            )
            index += 1
        if self.decode_errors:
            log.warning("%s: %d corrupt video packets were skipped", self.path, self.decode_errors)
        if info.frame_count and index < info.frame_count * 0.9:
            log.warning(
                "%s: decoded %d frames but the container announces %d; the file may be damaged",
                self.path, index, info.frame_count,
            )

    # -- lifetime --------------------------------------------------------
    def close(self) -> None:
        """Release the file; safe to call twice."""
        decoded = getattr(self, "_decoded", None)
        if decoded is not None:
            decoded.close()
            self._decoded = iter(())
        if self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        info = getattr(self, "info", None)
        if info is None:
            return f"VideoSource({str(self.path)!r}, closed)"
        return (
            f"VideoSource({str(self.path)!r}, {info.width}x{info.height} {info.codec} {info.pix_fmt}, "
            f"{float(info.fps):.3g} fps, {info.frame_count} frames)"
        )


def open_video(path: str | Path, *, max_decode_errors: int = 20) -> VideoSource:
    """Open a video file for frame-by-frame decoding.

    Parameters
    ----------
    path : str or Path
        Input video (any container/codec FFmpeg reads).
    max_decode_errors : int
        Consecutive corrupt packets tolerated while decoding.

    Returns
    -------
    VideoSource
        With :attr:`VideoSource.info` filled in and the first frame decoded.

    Raises
    ------
    InputError
        The file is missing, a folder, empty, not media, truncated, corrupt,
        has no video stream or no video frame.

    Examples
    --------
    >>> with open_video("clip.mp4") as source:  # doctest: +SKIP
    ...     for frame in source.frames():
    ...         frame.image.shape  # (H, W, 3)
    """
    return VideoSource(path, max_decode_errors=max_decode_errors)
