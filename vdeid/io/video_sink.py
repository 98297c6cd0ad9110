"""Encode processed frames into a video that matches its input.

:class:`VideoSink` re-encodes only the picture. It keeps the frame count, the
exact size, every frame's timestamp (so variable frame rate survives), the
display matrix (rotation), the colour tags, the pixel format and bit depth
where the encoder allows. Every audio stream is copied packet for packet
(bit-identical) from a second demuxer on the input, read lazily and
interleaved by time, so memory stays bounded. Audio the output container
cannot hold is re-encoded to AAC, and :attr:`VideoSink.notes` says so.
Privacy-relevant tags and side streams are dropped as
:mod:`vdeid.io.metadata` decides.

The file is written through :func:`~vdeid.io.atomic.atomic_output`: it appears
complete when the ``with`` block ends without error, or not at all.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from ..config import EncodeConfig
from ..errors import OutputError, ShapeError
from .atomic import atomic_output
from .metadata import filter_tags, is_identifying, keeps_side_stream
from .round_trip import EncoderRoundTrip, EncoderSettings
from .video_source import ENCODE_FLAGS, VideoSource

log = logging.getLogger(__name__)

#: Output containers, chosen from the output file's extension.
CONTAINERS: dict[str, str] = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}

# Encoder of the same family as the input codec; anything else gets libx264.
_FAMILY = {"h264": "libx264", "hevc": "libx265"}
_DEFAULT_ENCODER = "libx264"

# AVColorSpace (what frames/streams carry) -> swscale matrix id (what
# VideoReformatter takes). Unlisted values use swscale's default (BT.601),
# which is also what decoding used for them.
_SWS_MATRIX = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}

_RANGE_MPEG, _RANGE_JPEG = 1, 2


def container_format(path: str | Path) -> str:
    """FFmpeg muxer name for an output file, from its extension.

    Raises
    ------
    OutputError
        The extension is not one of :data:`CONTAINERS`.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in CONTAINERS:
        raise OutputError(
            f"cannot write {suffix or 'extension-less'} videos; name the output .mp4, .mov, .mkv or .avi", path
        )
    return CONTAINERS[suffix]


def _encoder(name: str) -> Optional[av.Codec]:
    try:
        codec = av.Codec(name, "w")
    except Exception:
        return None
    return codec if codec.type == "video" else None


def choose_encoder(input_codec: str, supported: set[str], *, override: Optional[str] = None) -> tuple[str, list[str]]:
    """Pick the video encoder: the override, else the input's family, else libx264.

    Parameters
    ----------
    input_codec : str
        Input codec name (``"h264"``, ``"hevc"``...).
    supported : set of str
        Codec names the output container accepts.
    override : str, optional
        Encoder asked for by the user (``EncodeConfig.codec``).

    Returns
    -------
    name : str
        Encoder name.
    notes : list of str
        Why the choice differs from the input's family, if it does.

    Raises
    ------
    OutputError
        The override is unknown or the container cannot hold it.
    """
    if override:
        if _encoder(override) is None:
            raise OutputError(f"unknown video encoder {override!r}; try libx264 or libx265")
        if override not in supported:
            raise OutputError(f"the output container cannot hold {override!r} video; change the extension or codec")
        return override, []
    wanted = _FAMILY.get(input_codec, _DEFAULT_ENCODER)
    if _encoder(wanted) is not None and wanted in supported:
        return wanted, []
    return _DEFAULT_ENCODER, [f"video encoded with {_DEFAULT_ENCODER}: {wanted} is unavailable for this output"]


def _subsampling(pix_fmt: str) -> tuple[bool, bool]:
    """(horizontal, vertical) chroma subsampling of a pixel format."""
    components = av.VideoFormat(pix_fmt, 4, 4).components
    if len(components) < 3:
        return False, False
    return components[1].width < components[0].width, components[1].height < components[0].height


def choose_pix_fmt(encoder: str, src_pix_fmt: str, width: int, height: int) -> tuple[str, list[str]]:
    """Pixel format for the encoder: the input's, else the closest one.

    The bit depth is kept when the encoder has it (10-bit stays 10-bit) and
    chroma subsampling too. Full-range ``yuvj*`` formats become ``yuv*`` (the
    range is tagged separately). 4:2:0 and 4:2:2 need even sizes in H.264 and
    HEVC, so an odd width (or an odd height with 4:2:0) switches to 4:4:4,
    which keeps the exact size.

    Parameters
    ----------
    encoder : str
        Encoder name.
    src_pix_fmt : str
        Decoded pixel format of the input.
    width, height : int
        Frame size.

    Returns
    -------
    pix_fmt : str
    notes : list of str
        What changed and why.
    """
    notes: list[str] = []
    name = "yuv" + src_pix_fmt[4:] if src_pix_fmt.startswith("yuvj") else src_pix_fmt
    formats = av.Codec(encoder, "w").video_formats
    supported = [f.name for f in formats] if formats else []
    src = av.VideoFormat(name, 4, 4)
    depth = max(c.bits for c in src.components)
    h_sub, v_sub = _subsampling(name) if not src.is_rgb else (True, True)
    chroma = {(True, True): "420", (True, False): "422", (False, False): "444"}.get((h_sub, v_sub), "420")

    def tag(bits: int) -> str:
        return "" if bits <= 8 else f"{bits}le"

    candidates = [name]
    for bits in sorted({b for b in (depth, 12, 10, 8) if b <= depth} | {8}, reverse=True):
        candidates += [f"yuv{c}p{tag(bits)}" for c in dict.fromkeys((chroma, "420", "444"))]
    chosen = next((c for c in candidates if not supported or c in supported), None)
    if chosen is None:
        chosen = supported[0]
    if chosen != name:
        notes.append(f"pixel format {src_pix_fmt} encoded as {chosen} ({encoder} has no {name})")
    h_sub, v_sub = _subsampling(chosen)
    if (h_sub and width % 2) or (v_sub and height % 2):
        full = f"yuv444p{tag(max(c.bits for c in av.VideoFormat(chosen, 4, 4).components))}"
        if not supported or full in supported:
            notes.append(
                f"odd frame size {width}x{height}: encoded as {full} instead of {chosen} to keep the exact size "
                "(4:2:0/4:2:2 need even sizes; some hardware players cannot decode 4:4:4)"
            )
            chosen = full
    return chosen, notes


def _encoder_options(
    encoder: str, config: EncodeConfig, *, variable_rate: bool = False
) -> tuple[dict[str, str], list[str]]:
    crf, preset = str(int(config.crf)), config.preset
    # With B-frames the MP4 sample table spans decode timestamps, which the
    # encoder makes up at a constant step: a variable-rate stream would come
    # out with a different length and average rate although every
    # presentation timestamp is kept.
    no_b = ["variable frame rate input: B-frames off so the stream keeps its length and average rate"]
    if encoder in ("libx264", "libx264rgb"):
        if variable_rate:
            return {"crf": crf, "preset": preset, "bf": "0"}, no_b
        return {"crf": crf, "preset": preset}, []
    if encoder == "libx265":
        params = "log-level=error" + (":bframes=0" if variable_rate else "")
        return {"crf": crf, "preset": preset, "x265-params": params}, no_b if variable_rate else []
    if encoder == "libvpx-vp9":
        return {"crf": crf, "b": "0"}, []
    if encoder == "libsvtav1":
        return {"crf": crf}, []
    return {}, [f"{encoder}: crf/preset are not applied (the encoder's defaults are used)"]


def can_copy(fmt: str, stream) -> bool:
    """Whether muxer ``fmt`` accepts a stream-copy of ``stream``.

    ``avformat_query_codec`` is not enough (it lets Opus into .mov, whose
    header then fails), so a header is written to memory with that stream.
    """
    try:
        with av.open(io.BytesIO(), "w", format=fmt) as probe:
            probe.add_stream_from_template(stream)
            probe.start_encoding()
    except Exception:  # any refusal (ValueError, FFmpegError...) means no
        return False
    return True


@dataclass
class _Aux:
    """One non-video input stream routed to the output."""

    source: av.stream.Stream
    target: av.stream.Stream
    reencode: bool = False


class VideoSink:
    """Write processed frames to ``output_path``, copying audio from ``source``.

    Use as a context manager; the output appears (atomically) when the block
    ends without error, and nothing is left behind otherwise.

    Parameters
    ----------
    output_path : str or Path
        Output video; the container follows the extension
        (:data:`CONTAINERS`).
    source : VideoSource
        The opened input; its file is read a second time for audio.
    config : EncodeConfig, optional
        Encoder, crf, preset, ``keep_metadata``...
    overwrite : bool
        Replace an existing output (never the input).

    Attributes
    ----------
    path : Path
        The final output path.
    notes : list of str
        What could not be kept as in the input, and what was dropped on
        purpose (re-encoded audio, dropped tags/streams, pixel format
        changes...), one line each.
    frames_written : int
        Frames passed to :meth:`write`.
    packets_copied : int
        Input audio/side packets written so far (copied or re-encoded); they
        are read lazily, only as far as the video has got.

    Raises
    ------
    OutputError
        Unsupported extension, output exists/is the input/unwritable folder,
        the encoder cannot encode this format, or no frame was written.

    Examples
    --------
    >>> with open_video("in.mp4") as source, VideoSink("out.mp4", source) as sink:  # doctest: +SKIP
    ...     for frame in source.frames():
    ...         sink.write(replace(frame, image=protect(frame.image)))
    """

    def __init__(
        self,
        output_path: str | Path,
        source: VideoSource,
        config: Optional[EncodeConfig] = None,
        *,
        overwrite: bool = False,
    ):
        self.path = Path(output_path)
        self.source = source
        self.config = config or EncodeConfig()
        self.notes: list[str] = []
        self.frames_written = 0
        self.packets_copied = 0
        self._closed = False
        self._last_pts: Optional[int] = None
        self._avi_origin: Optional[int] = None
        self._bumped = 0
        # Output pts -> frame duration, handed to the packet the encoder makes of it.
        self._durations: dict[int, int] = {}
        self._aux: dict[int, _Aux] = {}
        self._pending = None
        self._aux_errors = 0
        self._stack = contextlib.ExitStack()
        fmt = container_format(self.path)
        try:
            tmp = self._stack.enter_context(atomic_output(self.path, overwrite=overwrite, inputs=(source.path,)))
            self._setup(tmp, fmt)
        except BaseException as ex:
            self._abort(ex)
            raise

    # -- setup -----------------------------------------------------------
    def _note(self, message: str, *, level: int = logging.INFO) -> None:
        self.notes.append(message)
        log.log(level, "%s: %s", self.path, message)

    def _setup(self, tmp: Path, fmt: str) -> None:
        keep = self.config.keep_metadata
        options = {"movflags": "use_metadata_tags"} if keep and fmt in ("mp4", "mov") else {}
        self._out = av.open(str(tmp), "w", format=fmt, options=options)
        self._stack.callback(self._close_quietly, self._out)
        # A second demuxer on the input for audio (and kept side streams):
        # packets are pulled as the video advances, never buffered in bulk.
        self._aux_in = av.open(str(self.source.path), "r")
        self._stack.callback(self._close_quietly, self._aux_in)

        tags, dropped = filter_tags(self._aux_in.metadata, keep=keep)
        self._out.metadata.update(tags)
        self._report_dropped("container", dropped)
        supported = self._out.supported_codecs
        info = self.source.info
        for stream in self._aux_in.streams:
            if stream.index == info.stream_index:
                self._add_video(supported)
            elif stream.type == "audio":
                self._add_audio(stream, supported)
            elif stream.type == "video":
                self._note(f"extra video stream #{stream.index} dropped: it would not be de-identified")
            elif keeps_side_stream(stream.type, keep=keep):
                self._add_side(stream, supported)
            else:
                self._note(
                    f"{stream.type} stream #{stream.index} dropped (may hold GPS or telemetry; "
                    "keep_metadata keeps it)"
                )
        chosen = [a.source for a in self._aux.values()]
        self._aux_packets = self._demux_aux(chosen) if chosen else iter(())
        self._pending = self._next_aux()

    def _report_dropped(self, where: str, dropped: list[str]) -> None:
        if not dropped:
            return
        identifying = [k for k in dropped if is_identifying(k)]
        message = f"{where} tags dropped: {', '.join(dropped)}"
        if identifying:
            message += f" (identifying: {', '.join(identifying)})"
        self._note(message)

    def _add_video(self, supported: set[str]) -> None:
        info, config = self.source.info, self.config
        name, notes = choose_encoder(info.codec, supported, override=config.codec)
        if config.pix_fmt:
            pix_fmt = config.pix_fmt
        else:
            pix_fmt, more = choose_pix_fmt(name, info.pix_fmt, info.width, info.height)
            notes += more
        options, more = _encoder_options(name, config, variable_rate=info.variable_rate)
        notes += more
        for note in notes:
            self._note(note)

        self._enc_tb = info.time_base
        self._is_avi = self._out.format.name == "avi"
        if self._is_avi and info.fps and info.time_base != 1 / info.fps:
            # AVI has one tick per frame: finer time bases make the muxer pad
            # with empty frames, so frames are re-timed at the average rate.
            self._enc_tb = 1 / Fraction(info.fps)
            self._note("AVI output has a constant frame rate: timestamps re-timed to the average rate")
        stream = self._out.add_stream(name, rate=info.fps, options=options)
        stream.width, stream.height = info.width, info.height
        try:
            stream.pix_fmt = pix_fmt
        except ValueError as ex:
            raise OutputError(f"unknown pixel format {pix_fmt!r}; try yuv420p", self.path) from ex
        stream.time_base = self._enc_tb
        stream.disposition = int(self._aux_in.streams[info.stream_index].disposition)
        ctx = stream.codec_context
        ctx.time_base = self._enc_tb
        if self._is_avi:
            # AVI stores no presentation times: B-frames would shift every
            # frame by the reorder delay on playback.
            ctx.max_b_frames = 0
        rgb_input = av.VideoFormat(info.pix_fmt).is_rgb or info.color_space == 0
        if rgb_input:
            # RGB input (PNG, QuickTime RLE, x264rgb...) becomes YUV here:
            # convert with BT.709, limited range, and say so in the tags.
            self._color_space, self._range = 1, _RANGE_MPEG
            ctx.color_range = _RANGE_MPEG
        else:
            self._color_space = info.color_space
            self._range = info.color_range or (_RANGE_JPEG if info.pix_fmt.startswith("yuvj") else _RANGE_MPEG)
            ctx.color_range = self._range if info.color_range or info.pix_fmt.startswith("yuvj") else 0
        ctx.colorspace = self._color_space
        ctx.color_primaries = info.color_primaries
        ctx.color_trc = info.color_trc
        if info.sample_aspect_ratio and info.sample_aspect_ratio != 1:
            ctx.sample_aspect_ratio = info.sample_aspect_ratio
        if info.display_matrix is not None:
            if self._is_avi:
                if info.rotation:
                    self._note(f"rotation {info.rotation} deg lost: AVI cannot store it", level=logging.WARNING)
            else:
                stream.set_display_matrix(info.display_matrix)
        tags, dropped = filter_tags(info.video_tags, keep=self.config.keep_metadata)
        stream.metadata.update(tags)
        self._report_dropped("video stream", dropped)
        try:
            ctx.open()
        except av.FFmpegError as ex:
            raise OutputError(
                f"{name} cannot encode {info.width}x{info.height} {pix_fmt} ({ex}); try another codec", self.path
            ) from ex
        self._video = stream
        self._pix_fmt = pix_fmt
        self._matrix = _SWS_MATRIX.get(self._color_space)
        self._encoder_settings = EncoderSettings(
            encoder=name,
            pix_fmt=pix_fmt,
            options=dict(options),
            width=info.width,
            height=info.height,
            rate=Fraction(info.fps) if info.fps else Fraction(25),
            matrix=self._matrix,
            color_range=self._range,
            max_b_frames=0 if self._is_avi else None,
        )
        self._rgb = {np.dtype(np.uint8): "rgb24", np.dtype(np.uint16): "rgb48le"}
        self._reformatter = VideoReformatter()

    def _add_audio(self, stream, supported: set[str]) -> None:
        keep = self.config.keep_metadata
        codec = stream.codec_context.codec.canonical_name
        tags, dropped = filter_tags(stream.metadata, keep=keep)
        if codec in supported and can_copy(self._out.format.name, stream):
            target = self._out.add_stream_from_template(stream)
            reencode = False
        else:
            fallback = "aac" if "aac" in supported else self._out.default_audio_codec
            ctx = stream.codec_context
            target = self._out.add_stream(fallback, rate=ctx.sample_rate or 48000)
            target.codec_context.layout = ctx.layout
            target.codec_context.bit_rate = int(self.config.audio_bitrate)
            reencode = True
            self._note(
                f"audio stream #{stream.index} ({codec}) re-encoded to {fallback}: "
                f"{self._out.format.name} cannot hold {codec}",
                level=logging.WARNING,
            )
        target.metadata.update(tags)
        target.disposition = int(stream.disposition)
        self._report_dropped(f"audio stream #{stream.index}", dropped)
        self._aux[stream.index] = _Aux(stream, target, reencode)

    def _add_side(self, stream, supported: set[str]) -> None:
        codec = stream.codec_context.codec.canonical_name if stream.codec_context is not None else None
        fmt = self._out.format.name
        if stream.type == "attachment":
            can = fmt == "matroska"
        else:
            can = codec is not None and codec in supported and can_copy(fmt, stream)
        if not can:
            self._note(f"{stream.type} stream #{stream.index} ({codec}) not copied: {fmt} cannot hold it")
            return
        try:
            target = self._out.add_stream_from_template(stream)
        except (ValueError, av.FFmpegError) as ex:
            self._note(f"{stream.type} stream #{stream.index} ({codec}) not copied: {ex}")
            return
        target.metadata.update(stream.metadata)
        if stream.type != "attachment":
            self._aux[stream.index] = _Aux(stream, target)

    # -- auxiliary streams ---------------------------------------------------
    def _demux_aux(self, streams) -> Iterator:
        """Packets of the copied streams, skipping unreadable stretches."""
        demuxer = self._aux_in.demux(*streams)
        while True:
            try:
                packet = next(demuxer)
            except (StopIteration, av.EOFError):
                return
            except av.FFmpegError as ex:
                self._aux_errors += 1
                log.warning("%s: skipped unreadable audio data (%s)", self.source.path, ex)
                if self._aux_errors > self.source.max_decode_errors:
                    self._note("audio copy stopped early: too much unreadable data", level=logging.WARNING)
                    return
                demuxer = self._aux_in.demux(*streams)
                continue
            yield packet

    def _next_aux(self):
        for packet in self._aux_packets:
            if packet.size == 0:  # end-of-stream marker; decoders are flushed in close()
                continue
            ts = packet.dts if packet.dts is not None else packet.pts
            time = -math.inf if ts is None or packet.time_base is None else float(ts * packet.time_base)
            return packet, time
        return None

    def _pump(self, until: float) -> None:
        """Mux copied packets up to ``until`` seconds (interleaving by time)."""
        while self._pending is not None and self._pending[1] <= until:
            self._mux_aux(self._pending[0])
            self._pending = self._next_aux()

    def _mux_aux(self, packet) -> None:
        aux = self._aux[packet.stream.index]
        try:
            if aux.reencode:
                for frame in aux.source.decode(packet):
                    self._out.mux(aux.target.encode(frame))
            else:
                packet.stream = aux.target
                self._out.mux(packet)
            self.packets_copied += 1
        except av.FFmpegError as ex:
            self._aux_errors += 1
            if self._aux_errors <= 5:
                log.warning("%s: dropped one %s packet (%s)", self.path, aux.source.type, ex)

    def _flush_aux(self) -> None:
        self._pump(math.inf)
        for aux in self._aux.values():
            if aux.reencode:
                for frame in aux.source.decode(None):
                    self._out.mux(aux.target.encode(frame))
                self._out.mux(aux.target.encode(None))
        if self._aux_errors:
            self._note(f"{self._aux_errors} unreadable or unmuxable audio/side packets skipped", level=logging.WARNING)

    # -- video -----------------------------------------------------------
    def _mux_video(self, packets) -> None:
        for packet in packets:
            if packet.pts is not None and not packet.duration:
                duration = self._durations.pop(packet.pts, None)
                if duration:
                    packet.duration = duration
            ts = packet.dts if packet.dts is not None else packet.pts
            if ts is not None:
                self._pump(float(ts * packet.time_base))
            self._out.mux(packet)

    def _next_pts(self, frame) -> int:
        pts = getattr(frame, "pts", None)
        time_base = getattr(frame, "time_base", None) or self.source.info.time_base
        if pts is None:
            step = max(1, round(1 / (self.source.info.fps * self._enc_tb))) if self.source.info.fps else 1
            pts = 0 if self._last_pts is None else self._last_pts + step
        elif Fraction(time_base) != self._enc_tb:
            pts = round(Fraction(pts) * Fraction(time_base) / self._enc_tb)
        pts = int(pts)
        if self._is_avi:
            # AVI has no start offset: frame i is chunk i, and readers number
            # chunks from the stream start. Counting from the first frame
            # keeps AVI -> AVI timestamps identical (gaps become dropped-frame
            # chunks, so variable frame rate survives as well as AVI allows).
            if self._avi_origin is None:
                self._avi_origin = pts
            pts -= self._avi_origin
        if self._last_pts is not None and pts <= self._last_pts:
            # Encoders need strictly increasing timestamps.
            pts = self._last_pts + 1
            self._bumped += 1
        self._last_pts = pts
        return pts

    def write(self, frame) -> None:
        """Encode one frame.

        Parameters
        ----------
        frame : DecodedFrame or alike
            ``frame.image`` is ``(H, W, 3)`` RGB uint8 in [0, 255] or uint16
            in [0, 65535], with the source's ``H, W``; ``frame.pts`` (in
            ``frame.time_base``) is kept as the output timestamp.

        Raises
        ------
        ShapeError
            The image is not ``(H, W, 3)`` of the source's size, or not
            uint8/uint16.
        """
        if self._closed:
            raise RuntimeError("VideoSink is closed")
        info = self.source.info
        image = np.ascontiguousarray(frame.image)
        if image.shape != (info.height, info.width, 3):
            raise ShapeError(
                f"frame image must have shape ({info.height}, {info.width}, 3), got {tuple(image.shape)}"
            )
        if image.dtype not in self._rgb:
            raise ShapeError(f"frame image must be uint8 or uint16, got {image.dtype}")
        rgb = av.VideoFrame.from_ndarray(image, format=self._rgb[image.dtype])
        # The inverse of the decoder's YUV->RGB: same matrix and range.
        out = self._reformatter.reformat(
            rgb, format=self._pix_fmt, dst_colorspace=self._matrix, dst_color_range=self._range,
            interpolation=ENCODE_FLAGS,
        )
        out.color_range = self._video.codec_context.color_range
        out.colorspace = self._color_space
        out.color_primaries = info.color_primaries
        out.color_trc = info.color_trc
        out.pts = self._next_pts(frame)
        out.time_base = self._enc_tb
        duration = getattr(frame, "duration", None)
        if duration and not self._is_avi:
            # Encoders leave packet durations at 0 and the muxer then guesses
            # the last ones, so a VFR stream's length (and average rate)
            # drifts; the packets get their frame's duration back in _mux_video.
            time_base = getattr(frame, "time_base", None) or self.source.info.time_base
            self._durations[out.pts] = max(1, round(Fraction(duration) * Fraction(time_base) / self._enc_tb))
        self._mux_video(self._video.encode(out))
        self.frames_written += 1

    def round_trip(self) -> EncoderRoundTrip:
        """An in-memory copy of this output's encoder and decoder.

        The engine verifies faces on what it returns (see
        :mod:`vdeid.io.round_trip`); the output file is not touched.
        """
        return EncoderRoundTrip(self._encoder_settings)

    # -- lifetime --------------------------------------------------------
    @staticmethod
    def _close_quietly(container) -> None:
        with contextlib.suppress(Exception):
            container.close()

    def close(self) -> None:
        """Flush the encoder, write the remaining audio and publish the file.

        Raises
        ------
        OutputError
            No frame was written (nothing is left on disk).
        """
        if self._closed:
            return
        try:
            if self.frames_written == 0:
                raise OutputError("no frames were written; the output was not created", self.path)
            self._mux_video(self._video.encode(None))
            # Audio longer than the video is written in full.
            self._flush_aux()
            if self._bumped:
                self._note(f"{self._bumped} non-increasing frame timestamps moved forward", level=logging.WARNING)
            self._out.close()
            self._aux_in.close()
        except BaseException as ex:
            self._abort(ex)
            raise
        self._closed = True
        self._stack.close()

    def abort(self) -> None:
        """Stop and remove the partial output."""
        if not self._closed:
            self._abort(OutputError("aborted", self.path))

    def _abort(self, ex: BaseException) -> None:
        self._closed = True
        # Closes the containers, then atomic_output removes the partial file.
        with contextlib.suppress(BaseException):
            self._stack.__exit__(type(ex), ex, ex.__traceback__)

    def __enter__(self) -> "VideoSink":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self.close()
        else:
            self._abort(exc)
