"""Encode frames in memory and decode them back: the pixels a viewer will get.

An adversarial perturbation is a few grey levels spread over a face; the
encoder's quantisation removes part of it, and more at high resolution,
where a face covers many macroblocks. :class:`EncoderRoundTrip` runs the
output's own encoder (same codec, pixel format, CRF, preset and colour
matrix as :class:`~vdeid.io.video_sink.VideoSink` uses) on a chunk of frames
and decodes the packets with FFmpeg's decoder, converting back to RGB as
:class:`~vdeid.io.video_source.VideoSource` does, so that the engine can judge
each face on what will actually be shipped.

A chunk is encoded on its own, so its first frame is a keyframe (quantised
more finely than in the output, where it is usually predicted) and its last
ones are predicted without look-ahead (more coarsely). On the same frames
the round trip is bit-identical to the file the sink writes; against the
same frames inside the whole clip its mean error per frame is 0.02-0.04
grey levels higher on average, single frames -0.1 to +0.27
(``docs/video-io.md``, ``benchmarks/encoder_round_trip.py``). Frames are
timed at the average frame rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional, Sequence

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from ..errors import OutputError
from .video_source import DECODE_FLAGS_8BIT, DECODE_FLAGS_16BIT, ENCODE_FLAGS

# Decoder of each encoder's bitstream (other encoders share their decoder's name).
_DECODERS = {"libx264": "h264", "libx264rgb": "h264", "libx265": "hevc", "libvpx-vp9": "vp9", "libsvtav1": "av1"}


@dataclass(frozen=True)
class EncoderSettings:
    """What the output's video encoder was opened with.

    Attributes
    ----------
    encoder : str
        FFmpeg encoder name (``libx264``, ``libx265``...).
    pix_fmt : str
        Encoded pixel format (``yuv420p``, ``yuv420p10le``...).
    options : dict of str to str
        Encoder options (``crf``, ``preset``...).
    width, height : int
        Frame size in pixels.
    rate : Fraction
        Frame rate (rate control spends bits per second).
    matrix : int or None
        swscale colour matrix of the RGB -> YUV conversion (None: BT.601).
    color_range : int
        1 limited (MPEG), 2 full (JPEG) range.
    max_b_frames : int or None
        Forced B-frame limit (AVI output), None for the encoder's default.
    """

    encoder: str
    pix_fmt: str
    options: dict = field(default_factory=dict)
    width: int = 0
    height: int = 0
    rate: Fraction = Fraction(25)
    matrix: Optional[int] = None
    color_range: int = 1
    max_b_frames: Optional[int] = None


class EncoderRoundTrip:
    """Encode RGB frames with fixed encoder settings and decode them back.

    Parameters
    ----------
    settings : EncoderSettings
        The output's encoder settings (:meth:`VideoSink.round_trip
        <vdeid.io.video_sink.VideoSink.round_trip>` gives them).

    Examples
    --------
    >>> import numpy as np
    >>> trip = EncoderRoundTrip(EncoderSettings("libx264", "yuv420p", {"crf": "18"}, 64, 48))
    >>> frames = [np.full((48, 64, 3), 128, np.uint8)] * 3
    >>> [f.shape for f in trip(frames)]
    [(48, 64, 3), (48, 64, 3), (48, 64, 3)]
    """

    def __init__(self, settings: EncoderSettings):
        self.settings = settings
        self._to_yuv = VideoReformatter()
        self._to_rgb = VideoReformatter()

    def __call__(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Frames as they come out of the encoder and decoder.

        Parameters
        ----------
        frames : sequence of ndarray of shape (H, W, 3)
            Consecutive RGB frames, uint8 in [0, 255] or uint16 in
            [0, 65535] (10-bit and deeper output), of the settings' size.

        Returns
        -------
        list of ndarray of shape (H, W, 3)
            One per frame of ``frames``, same dtype.

        Raises
        ------
        OutputError
            The encoder cannot be opened or returns fewer frames.
        """
        s = self.settings
        if not frames:
            return []
        dtype = frames[0].dtype
        rgb = "rgb48le" if dtype == np.uint16 else "rgb24"
        encoder = self._open_encoder()
        decoder = av.CodecContext.create(_DECODERS.get(s.encoder, s.encoder), "r")
        decoder.thread_type = "AUTO"
        decoded: list[av.VideoFrame] = []
        for pts, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=rgb)
            yuv = self._to_yuv.reformat(
                frame, format=s.pix_fmt, dst_colorspace=s.matrix, dst_color_range=s.color_range,
                interpolation=ENCODE_FLAGS,
            )
            yuv.pts = pts
            yuv.color_range = s.color_range
            for packet in encoder.encode(yuv):
                decoded += decoder.decode(packet)
        for packet in encoder.encode(None):
            decoded += decoder.decode(packet)
        decoded += decoder.decode(None)
        decoded.sort(key=lambda f: f.pts if f.pts is not None else 0)
        if len(decoded) != len(frames):
            raise OutputError(f"{s.encoder} round trip returned {len(decoded)} of {len(frames)} frames")
        flags = DECODE_FLAGS_16BIT if dtype == np.uint16 else DECODE_FLAGS_8BIT
        out = []
        for frame in decoded:
            image = self._to_rgb.reformat(
                frame, format=rgb, src_colorspace=s.matrix, src_color_range=s.color_range, interpolation=flags,
            ).to_ndarray()
            out.append(image)
        return out

    def _open_encoder(self) -> av.CodecContext:
        s = self.settings
        try:
            ctx = av.CodecContext.create(s.encoder, "w")
        except av.codec.codec.UnknownCodecError as ex:
            raise OutputError(f"unknown encoder {s.encoder!r} for the encoder round trip") from ex
        ctx.width, ctx.height, ctx.pix_fmt = s.width, s.height, s.pix_fmt
        ctx.time_base = 1 / Fraction(s.rate)
        ctx.framerate = Fraction(s.rate)
        ctx.color_range = s.color_range
        if s.max_b_frames is not None:
            ctx.max_b_frames = s.max_b_frames
        ctx.options = dict(s.options)
        try:
            ctx.open()
        except av.FFmpegError as ex:
            raise OutputError(f"cannot open {s.encoder} for the encoder round trip ({ex})") from ex
        return ctx

