"""Build small test clips with PyAV and read back what a file holds.

Clips are written to pytest's ``tmp_path`` (PyAV's own tests write synthetic
video the same way), a few dozen frames of smooth moving content so CRF
encoding keeps them close to the original.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Optional, Sequence

import av
import numpy as np

from vdeid.config import EncodeConfig
from vdeid.io import VideoSink, open_video

MS = Fraction(1, 1000)
# Tags a phone or drone writes; the two location keys are what Apple and
# FFmpeg use for GPS position.
PRIVATE_TAGS = {
    "location": "+52.3702+004.8952/",
    "com.apple.quicktime.location.ISO6709": "+52.3702+004.8952+001.000/",
    "make": "DJI",
    "model": "FC3170",
    "artist": "Jan Jansen",
    "creation_time": "2024-05-01T10:00:00Z",
}


def frame_image(index: int, width: int, height: int, *, dtype=np.uint8) -> np.ndarray:
    """Smooth RGB test picture with a square that moves with ``index``.

    Returns
    -------
    ndarray
        ``(height, width, 3)`` of ``dtype`` (uint8 in [0, 255] or uint16 in
        [0, 65535]).
    """
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack(
        [x / max(width - 1, 1), y / max(height - 1, 1), 0.5 + 0.25 * np.sin((x + y + 4 * index) / 9.0)], axis=-1
    )
    side = max(4, min(width, height) // 4)
    x0 = (3 * index) % max(1, width - side)
    image[height // 3 : height // 3 + side, x0 : x0 + side] = (0.9, 0.2, 0.1)
    # Kept inside [0.1, 0.9], like real footage: coding noise on clipped
    # (saturated) pixels would look like a colour bias.
    image = 0.1 + 0.8 * image
    scale = 65535.0 if np.dtype(dtype) == np.uint16 else 255.0
    return np.clip(np.rint(image * scale), 0, scale).astype(dtype)


def vfr_pts(count: int, *, step: int = 40) -> list[int]:
    """Increasing, irregular timestamps (variable frame rate), in ms."""
    pattern = (0, 7, -5, 13, 0, -9)
    pts, t = [], 0
    for i in range(count):
        pts.append(t)
        t += step + pattern[i % len(pattern)]
    return pts


@dataclass
class Clip:
    """What :func:`write_clip` wrote."""

    path: Path
    width: int
    height: int
    pts: list[int]
    time_base: Fraction
    audio_codecs: tuple = ()
    tags: dict = field(default_factory=dict)


def encode_audio(container, stream, seconds: float, *, sample_rate: int = 44100, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    samples = 1024
    n = int(np.ceil(seconds * sample_rate / samples))
    t0 = 0
    for _ in range(n):
        t = (t0 + np.arange(samples)) / sample_rate
        tone = 0.2 * np.sin(2 * np.pi * 440.0 * t) + 0.01 * rng.standard_normal(samples)
        frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]).astype(np.float32), format="fltp", layout="stereo")
        frame.sample_rate = sample_rate
        frame.pts = t0
        frame.time_base = Fraction(1, sample_rate)
        container.mux(stream.encode(frame))
        t0 += samples
    container.mux(stream.encode(None))


def write_clip(
    path: Path,
    *,
    size: tuple[int, int] = (64, 48),
    frames: int = 12,
    fps: int = 25,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    pts: Optional[Sequence[int]] = None,
    time_base: Fraction = MS,
    rotation: Optional[float] = None,
    color: Optional[dict] = None,
    tags: Optional[dict] = None,
    video_tags: Optional[dict] = None,
    audio: Sequence[str] = (),
    audio_first: bool = False,
    audio_seconds: Optional[float] = None,
    subtitle: Optional[str] = None,
    options: Optional[dict] = None,
) -> Clip:
    """Write a small clip.

    Parameters
    ----------
    path : Path
        Output file; the extension picks the container.
    size : (width, height)
    frames : int
        Number of video frames (0 writes a video stream without frames).
    codec, pix_fmt : str
        Video encoder and pixel format.
    pts : sequence of int, optional
        Frame timestamps in ``time_base`` (default: constant ``fps``).
    rotation : float, optional
        Display rotation in counter-clockwise degrees.
    color : dict, optional
        ``color_range``, ``colorspace``, ``color_primaries``, ``color_trc``.
    tags, video_tags : dict, optional
        Container and video-stream tags.
    audio : sequence of str
        One audio stream per encoder name (``"aac"``, ``"libmp3lame"``...).
    audio_first : bool
        Put the audio streams before the video stream (index 0).
    audio_seconds : float, optional
        Audio length (default: the video's length).
    subtitle : str, optional
        ``"mov_text"`` (mp4/mov) or ``"subrip"`` (mkv): a subtitle stream
        with GPS-like text, as drones write.
    options : dict, optional
        Muxer options (``{"movflags": "faststart"}``...).
    """
    width, height = size
    if pts is None:
        step = Fraction(1, fps) / time_base
        pts = [int(round(i * step)) for i in range(frames)]
    pts = list(pts)[:frames]
    container = av.open(str(path), "w", options=options or {})
    container.metadata.update(tags or {})
    audio_streams = []

    def add_audio():
        for i, name in enumerate(audio):
            stream = container.add_stream(name, rate={"pcm_mulaw": 8000, "libopus": 48000}.get(name, 44100))
            stream.metadata["language"] = ("eng", "nld", "deu")[i % 3]
            audio_streams.append(stream)

    if audio_first:
        add_audio()
    video = container.add_stream(codec, rate=fps)
    video.width, video.height, video.pix_fmt = width, height, pix_fmt
    video.time_base = time_base
    video.codec_context.time_base = time_base
    if codec == "libx265":
        video.codec_context.options = {"x265-params": "log-level=error"}
    for key, value in (color or {}).items():
        setattr(video.codec_context, key, value)
    if rotation is not None:
        video.set_display_rotation(rotation)
    video.metadata.update(video_tags or {})
    if not audio_first:
        add_audio()
    sub = None
    if subtitle:
        sub = container.add_mux_stream(subtitle)
        sub.time_base = MS
    dtype = np.uint16 if "10" in pix_fmt or "12" in pix_fmt else np.uint8
    rgb = "rgb48le" if dtype == np.uint16 else "rgb24"
    container.start_encoding()
    for i, t in enumerate(pts):
        frame = av.VideoFrame.from_ndarray(frame_image(i, width, height, dtype=dtype), format=rgb)
        frame.pts, frame.time_base = t, time_base
        container.mux(video.encode(frame))
    if frames:
        container.mux(video.encode(None))
    video_seconds = float((pts[-1] + (pts[-1] - pts[-2] if len(pts) > 1 else 1)) * time_base) if pts else 0.0
    for i, stream in enumerate(audio_streams):
        encode_audio(container, stream, audio_seconds or video_seconds or 0.5, sample_rate=stream.rate, seed=i)
    if sub is not None:
        for j, text in enumerate(["GPS 52.3702 4.8952 alt 31m", "GPS 52.3705 4.8960 alt 32m"]):
            data = text.encode()
            if subtitle == "mov_text":
                data = len(data).to_bytes(2, "big") + data
            packet = av.Packet(data)
            packet.stream = sub
            packet.pts = packet.dts = j * 200
            packet.duration = 200
            packet.time_base = MS
            container.mux(packet)
    container.close()
    return Clip(Path(path), width, height, pts, time_base, tuple(audio), dict(tags or {}))


def corrupt_video_packets(path: Path, out: Path, indices: Sequence[int]) -> Path:
    """Copy ``path`` to ``out`` with the payload of some video packets zeroed."""
    data = bytearray(Path(path).read_bytes())
    with av.open(str(path)) as container:
        packets = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    for i in indices:
        pos, size = packets[i]
        data[pos : pos + size] = bytes(size)
    Path(out).write_bytes(bytes(data))
    return Path(out)


def packets_by_stream(path: Path, kind: str = "audio") -> list[list[bytes]]:
    """Payload bytes of every packet, per stream of type ``kind``, in file order."""
    with av.open(str(path)) as container:
        streams = [s for s in container.streams if s.type == kind]
        out = {s.index: [] for s in streams}
        if streams:
            for packet in container.demux(*streams):
                if packet.size:
                    out[packet.stream.index].append(bytes(packet))
    return [out[i] for i in sorted(out)]


def audio_end_times(path: Path) -> list[float]:
    """End of each audio stream in seconds (last packet's pts + duration)."""
    with av.open(str(path)) as container:
        streams = list(container.streams.audio)
        ends = {s.index: 0.0 for s in streams}
        if streams:
            for packet in container.demux(*streams):
                if packet.size and packet.pts is not None:
                    end = (packet.pts + (packet.duration or 0)) * packet.time_base
                    ends[packet.stream.index] = max(ends[packet.stream.index], float(end))
    return [ends[i] for i in sorted(ends)]


def video_times(path: Path) -> list[Fraction]:
    """Presentation times (seconds, exact) of the decoded video frames."""
    with open_video(path) as source:
        return [Fraction(f.pts) * f.time_base for f in source.frames()]


def stream_summary(path: Path) -> list[tuple[str, str]]:
    """``(type, codec)`` of each stream, in index order."""
    with av.open(str(path)) as container:
        return [
            (s.type, s.codec_context.codec.canonical_name if s.codec_context is not None else str(s.type))
            for s in container.streams
        ]


def identity_pass(src: Path, out: Path, config: Optional[EncodeConfig] = None, **kwargs) -> VideoSink:
    """Decode ``src`` and write every image back unchanged into ``out``."""
    config = config or EncodeConfig(preset="ultrafast")
    with open_video(src) as source, VideoSink(out, source, config, **kwargs) as sink:
        for frame in source.frames():
            sink.write(frame)
    return sink
