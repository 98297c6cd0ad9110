"""Tests for vdeid.io.video_source / video_sink: decode, re-encode, stay faithful.

Every round trip is an identity pass (decoded images written back) through
:class:`VideoSink`, then the output file is read back and compared with the
input: frame count, exact size, timestamps, audio packet bytes, rotation,
colour tags, bit depth, tags.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from fractions import Fraction

import av
import numpy as np
import pytest
from media import (
    PRIVATE_TAGS,
    audio_end_times,
    corrupt_video_packets,
    encode_audio,
    frame_image,
    identity_pass,
    packets_by_stream,
    stream_summary,
    video_times,
    vfr_pts,
    write_clip,
)

from vdeid.config import EncodeConfig
from vdeid.errors import InputError, OutputError, ShapeError
from vdeid.io import DecodedFrame, VideoInfo, VideoSink, open_video

FAST = EncodeConfig(preset="ultrafast")
BT709 = dict(color_range=1, colorspace=1, color_primaries=1, color_trc=1)


def _psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(peak**2 / max(mse, 1e-12)))


def _real_clips(videos_dir):
    clips = sorted(p for p in videos_dir.iterdir() if p.is_file())
    if not clips:
        pytest.skip(f"no videos in {videos_dir}")
    return clips


def _images(path):
    with open_video(path) as source:
        return [f.image for f in source.frames()]


# -- VideoSource ---------------------------------------------------------------


def test_info_describes_the_stream(tmp_path):
    clip = write_clip(
        tmp_path / "in.mp4", pts=vfr_pts(12), rotation=90, color=BT709, audio=("aac", "libmp3lame"),
        subtitle="mov_text",
    )
    with open_video(clip.path) as source:
        info = source.info
    assert isinstance(info, VideoInfo)
    assert (info.width, info.height) == (64, 48)
    assert info.codec == "h264" and info.pix_fmt == "yuv420p" and info.bit_depth == 8
    with av.open(str(clip.path)) as container:
        assert info.time_base == container.streams.video[0].time_base  # mp4 picks 1/16000 here
    assert isinstance(info.fps, Fraction) and 15 < info.fps < 40
    assert info.frame_count == 12
    assert info.duration == pytest.approx(clip.pts[-1] / 1000, abs=0.1)
    assert info.rotation == 90 and info.display_matrix is not None and len(info.display_matrix) == 9
    assert (info.color_range, info.color_space, info.color_primaries, info.color_trc) == (1, 1, 1, 1)
    assert [(a.codec, a.sample_rate, a.channels, a.language) for a in info.audio] == [
        ("aac", 44100, 2, "eng"),
        ("mp3", 44100, 2, "nld"),
    ]
    assert [(s.type, s.codec) for s in info.other_streams] == [("subtitle", "mov_text")]
    assert info.dtype == np.uint8


def test_frames_stream_rgb_images_with_their_timestamps(tmp_path):
    clip = write_clip(tmp_path / "in.mp4", pts=vfr_pts(15), frames=15)
    with open_video(clip.path) as source:
        frames = list(source.frames())
    assert [f.index for f in frames] == list(range(15))
    assert [f.pts * f.time_base for f in frames] == [p * clip.time_base for p in clip.pts]
    assert frames[3].time == pytest.approx(clip.pts[3] / 1000)
    for i, frame in enumerate(frames):
        assert frame.image.shape == (48, 64, 3) and frame.image.dtype == np.uint8
        # Each decoded image is the picture written at that position.
        scores = [_psnr(frame.image, frame_image(j, 64, 48), 255) for j in range(15)]
        assert int(np.argmax(scores)) == i and scores[i] > 25


def test_frames_are_single_pass(tmp_path):
    clip = write_clip(tmp_path / "in.mp4", frames=3)
    with open_video(clip.path) as source:
        assert len(list(source.frames())) == 3
        with pytest.raises(RuntimeError, match="once"):
            source.frames()


def test_ten_bit_input_decodes_to_uint16(tmp_path):
    clip = write_clip(tmp_path / "in.mp4", pix_fmt="yuv420p10le", frames=4)
    with open_video(clip.path) as source:
        assert source.info.bit_depth == 10 and source.info.dtype == np.uint16
        images = [f.image for f in source.frames()]
    assert images[0].dtype == np.uint16 and images[0].shape == (48, 64, 3)
    # Full 16-bit scale, not 10-bit values in a 16-bit container.
    assert images[0].max() > 60000
    assert _psnr(images[1], frame_image(1, 64, 48, dtype=np.uint16), 65535) > 25


def test_corrupt_frames_are_skipped_and_counted(tmp_path, caplog):
    # PNG frames fail loudly when damaged (H.264 would conceal the damage).
    clip = write_clip(tmp_path / "in.mov", codec="png", pix_fmt="rgb24", frames=10, audio=("aac",))
    bad = corrupt_video_packets(clip.path, tmp_path / "bad.mov", [3, 4])
    with caplog.at_level(logging.WARNING, logger="vdeid"):
        with open_video(bad) as source:
            frames = list(source.frames())
            assert source.decode_errors == 2
    assert len(frames) == 8
    kept = [clip.pts[i] * clip.time_base for i in (0, 1, 2, 5, 6, 7, 8, 9)]
    assert [f.pts * f.time_base for f in frames] == kept
    assert sum("corrupt" in r.getMessage() for r in caplog.records) >= 2
    # The damaged input still makes a valid output, frames and audio kept.
    out = tmp_path / "out.mp4"
    identity_pass(bad, out)
    assert video_times(out) == kept
    assert packets_by_stream(out) == packets_by_stream(clip.path)


def test_too_much_corruption_is_an_input_error(tmp_path):
    clip = write_clip(tmp_path / "in.mov", codec="png", pix_fmt="rgb24", frames=10)
    bad = corrupt_video_packets(clip.path, tmp_path / "bad.mov", range(2, 9))
    with open_video(bad, max_decode_errors=3) as source:
        with pytest.raises(InputError, match="corrupt") as info:
            list(source.frames())
    _one_line(info.value, bad)


# -- bad inputs ----------------------------------------------------------------


def _one_line(error: InputError, path) -> None:
    assert error.path == str(path)
    assert "\n" not in str(error) and str(error).startswith(str(path))


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found") as info:
        open_video(tmp_path / "nope.mp4")
    _one_line(info.value, tmp_path / "nope.mp4")


def test_folder_is_not_a_video(tmp_path):
    with pytest.raises(InputError, match="folder"):
        open_video(tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        open_video(path)


def test_text_file_renamed_mp4(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("these are my holiday notes, not a video\n" * 20)
    with pytest.raises(InputError, match="not a readable video") as info:
        open_video(path)
    _one_line(info.value, path)


@pytest.mark.parametrize("faststart", [False, True], ids=["moov-at-end", "moov-first"])
def test_truncated_file(tmp_path, faststart):
    clip = write_clip(
        tmp_path / "in.mp4", frames=20, audio=("aac",), options={"movflags": "faststart"} if faststart else None
    )
    data = clip.path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(InputError, match="truncated") as info:
        open_video(cut)
    _one_line(info.value, cut)


@pytest.mark.parametrize("ext,codec", [(".avi", "mpeg4"), (".mkv", "libx264")])
def test_truncated_avi_and_mkv(tmp_path, ext, codec):
    # Both formats announce their size up front (RIFF / EBML segment).
    clip = write_clip(tmp_path / f"in{ext}", codec=codec, frames=20, time_base=Fraction(1, 25), audio=("aac",))
    data = clip.path.read_bytes()
    cut = tmp_path / f"cut{ext}"
    cut.write_bytes(data[: len(data) - 100])
    with pytest.raises(InputError, match="truncated"):
        open_video(cut)


def test_truncated_real_clips(videos_dir, tmp_path):
    for clip in _real_clips(videos_dir):
        data = clip.read_bytes()
        cut = tmp_path / f"cut{clip.suffix}"
        cut.write_bytes(data[: len(data) // 2])
        with pytest.raises(InputError) as info:
            open_video(cut)
        _one_line(info.value, cut)


def test_audio_only_file(tmp_path):
    path = tmp_path / "voice.mp4"
    with av.open(str(path), "w") as container:
        encode_audio(container, container.add_stream("aac", rate=44100), 0.5)
    with pytest.raises(InputError, match="no video stream .*audio"):
        open_video(path)


def test_zero_frame_file(tmp_path):
    clip = write_clip(tmp_path / "empty.avi", frames=0, codec="mpeg4")
    with pytest.raises(InputError, match="no video frames") as info:
        open_video(clip.path)
    _one_line(info.value, clip.path)


@pytest.mark.parametrize("audio", [(), ("aac",)])
def test_zero_frame_mp4(tmp_path, audio):
    # FFmpeg hides an mp4 video track without samples: still one clear error.
    clip = write_clip(tmp_path / "empty.mp4", frames=0, audio=audio)
    with pytest.raises(InputError, match="no streams|no video stream"):
        open_video(clip.path)


# -- identity round trips --------------------------------------------------------


@pytest.mark.parametrize("ext", [".mp4", ".mov", ".mkv"])
def test_round_trip_keeps_frames_timestamps_and_audio(tmp_path, ext):
    clip = write_clip(tmp_path / f"in{ext}", frames=16, pts=vfr_pts(16), audio=("aac",))
    out = tmp_path / f"out{ext}"
    sink = identity_pass(clip.path, out)
    assert sink.frames_written == 16
    with open_video(out) as result:
        assert (result.info.width, result.info.height) == (64, 48)
        assert result.info.codec == "h264"
    # Same presentation times, so variable frame rate survives.
    assert video_times(out) == [Fraction(p, 1000) for p in clip.pts]
    assert packets_by_stream(out) == packets_by_stream(clip.path)
    assert len(packets_by_stream(out)[0]) > 10


def test_variable_rate_keeps_length_and_average_rate(videos_dir, tmp_path):
    """A phone-style VFR clip: same stream length and average rate, not only the same timestamps."""
    src = videos_dir / "talking_head_man_a.mp4"
    if not src.exists():
        pytest.skip(f"{src} not found")
    out = tmp_path / "out.mp4"
    sink = identity_pass(src, out)
    assert any("variable frame rate" in n for n in sink.notes)
    with av.open(str(src)) as a, av.open(str(out)) as b:
        va, vb = a.streams.video[0], b.streams.video[0]
        assert va.average_rate != va.base_rate  # the clip is VFR
        assert vb.average_rate == va.average_rate
        assert vb.duration * vb.time_base == va.duration * va.time_base


def test_round_trip_is_visually_lossless(tmp_path):
    clip = write_clip(tmp_path / "in.mp4", frames=8, size=(96, 64), color=BT709)
    out = tmp_path / "out.mp4"
    identity_pass(clip.path, out, EncodeConfig(preset="ultrafast", crf=18))
    before, after = _images(clip.path), _images(out)
    assert len(before) == len(after) == 8
    assert all(_psnr(a, b, 255) > 35 for a, b in zip(before, after))


@pytest.mark.parametrize("pix_fmt", ["yuv444p", "yuv444p10le"])
def test_colour_conversion_round_trip_is_exact(tmp_path, pix_fmt):
    # Lossless coding isolates the YUV<->RGB conversions: the sink must invert
    # the source's exactly (same matrix, range and rounding).
    clip = write_clip(tmp_path / "in.mp4", frames=4, size=(96, 64), color=BT709, pix_fmt=pix_fmt)
    out = tmp_path / "out.mp4"
    identity_pass(clip.path, out, EncodeConfig(preset="ultrafast", crf=0))
    deep = "10" in pix_fmt
    peak = 65535 if deep else 255
    # In 8-bit levels: exact for 8 bits; within about one 10-bit code (0.25).
    spread, bias = (0.5, 0.2) if deep else (0.05, 0.02)
    for a, b in zip(_images(clip.path), _images(out)):
        diff = (b.astype(float) - a.astype(float)) * 255 / peak
        assert np.abs(diff).mean() < spread and np.abs(diff.mean(axis=(0, 1))).max() < bias


def test_avi_with_mp3_round_trip(tmp_path):
    clip = write_clip(tmp_path / "in.avi", codec="mpeg4", frames=12, time_base=Fraction(1, 25), audio=("libmp3lame",))
    out = tmp_path / "out.avi"
    identity_pass(clip.path, out)
    assert stream_summary(out) == [("video", "h264"), ("audio", "mp3")]
    assert len(video_times(out)) == 12
    assert packets_by_stream(out) == packets_by_stream(clip.path)


def test_audio_first_and_two_tracks(tmp_path):
    clip = write_clip(tmp_path / "in.mp4", frames=12, audio=("aac", "libmp3lame"), audio_first=True)
    assert stream_summary(clip.path)[0][0] == "audio"
    out = tmp_path / "out.mp4"
    identity_pass(clip.path, out)
    # Stream order and every packet of both tracks are kept.
    assert stream_summary(out) == [("audio", "aac"), ("audio", "mp3"), ("video", "h264")]
    before, after = packets_by_stream(clip.path), packets_by_stream(out)
    assert [len(p) for p in after] == [len(p) for p in before] and after == before
    with av.open(str(out)) as container:
        assert [s.metadata.get("language") for s in container.streams.audio] == ["eng", "nld"]


def test_audio_longer_than_video_is_written_in_full(tmp_path):
    clip = write_clip(tmp_path / "in.mp4", frames=10, fps=25, audio=("aac",), audio_seconds=2.0)
    out = tmp_path / "out.mp4"
    identity_pass(clip.path, out)
    assert packets_by_stream(out) == packets_by_stream(clip.path)
    with av.open(str(out)) as container:
        audio = container.streams.audio[0]
        assert float(audio.duration * audio.time_base) == pytest.approx(2.0, abs=0.05)


def test_audio_is_pulled_lazily(tmp_path):
    clip = write_clip(tmp_path / "in.mp4", frames=20, fps=10, audio=("aac",))
    total = len(packets_by_stream(clip.path)[0])
    with open_video(clip.path) as source, VideoSink(tmp_path / "out.mp4", source, FAST) as sink:
        for frame in source.frames():
            sink.write(frame)
            if frame.index == 4:
                # Half a second of a two-second clip: not the whole audio track.
                assert 0 < sink.packets_copied < total / 2
    assert sink.packets_copied == total


@pytest.mark.parametrize(
    "src,codec,dst",
    [("in.mov", "pcm_mulaw", "out.mp4"), ("in.mkv", "libopus", "out.mov")],
    ids=["mulaw-mp4", "opus-mov"],
)
def test_unsupported_audio_is_reencoded_to_aac(tmp_path, caplog, src, codec, dst):
    # FFmpeg's codec query accepts Opus in .mov, but the muxer refuses it:
    # the sink must find out before writing, not fail half-way.
    clip = write_clip(tmp_path / src, frames=10, audio=(codec,))
    out = tmp_path / dst
    with caplog.at_level(logging.WARNING, logger="vdeid"):
        sink = identity_pass(clip.path, out)
    assert stream_summary(out) == [("video", "h264"), ("audio", "aac")]
    assert any("re-encoded to aac" in note for note in sink.notes)
    assert any("re-encoded to aac" in r.getMessage() for r in caplog.records)
    with av.open(str(out)) as container:
        audio = container.streams.audio[0]
        assert float(audio.duration * audio.time_base) == pytest.approx(0.48, abs=0.1)


@pytest.mark.parametrize(
    "size,pix_fmt,codec",
    [((65, 49), "yuv444p", "libx264"), ((65, 49), "yuv420p", "mpeg4"), ((66, 49), "yuv420p", "mpeg4")],
)
def test_odd_sizes_are_kept_exactly(tmp_path, size, pix_fmt, codec):
    clip = write_clip(tmp_path / "in.mp4", size=size, pix_fmt=pix_fmt, codec=codec, frames=6)
    out = tmp_path / "out.mp4"
    sink = identity_pass(clip.path, out)
    with open_video(out) as result:
        assert (result.info.width, result.info.height) == size
        assert result.info.pix_fmt == "yuv444p"
        images = [f.image for f in result.frames()]
    assert len(images) == 6 and images[0].shape == (size[1], size[0], 3)
    if pix_fmt == "yuv420p":
        assert any("odd frame size" in note for note in sink.notes)


def test_even_size_keeps_420(tmp_path):
    clip = write_clip(tmp_path / "in.mp4", size=(66, 50), frames=4)
    out = tmp_path / "out.mp4"
    identity_pass(clip.path, out)
    with open_video(out) as result:
        assert (result.info.width, result.info.height, result.info.pix_fmt) == (66, 50, "yuv420p")


@pytest.mark.parametrize("codec,expect", [("libx264", "h264"), ("libx265", "hevc")])
def test_ten_bit_stays_ten_bit_and_same_family(tmp_path, codec, expect):
    clip = write_clip(tmp_path / "in.mp4", codec=codec, pix_fmt="yuv420p10le", frames=5, color=BT709)
    out = tmp_path / "out.mp4"
    identity_pass(clip.path, out)
    with open_video(out) as result:
        assert result.info.codec == expect
        assert (result.info.pix_fmt, result.info.bit_depth) == ("yuv420p10le", 10)
        images = [f.image for f in result.frames()]
    before = _images(clip.path)
    assert images[0].dtype == np.uint16
    assert _psnr(images[2], before[2], 65535) > 35


def test_codec_override(tmp_path):
    clip = write_clip(tmp_path / "in.mp4", frames=4)
    out = tmp_path / "out.mkv"
    identity_pass(clip.path, out, EncodeConfig(codec="libx265", preset="ultrafast"))
    assert stream_summary(out)[0] == ("video", "hevc")
    with pytest.raises(OutputError, match="unknown video encoder"):
        identity_pass(clip.path, tmp_path / "bad.mp4", EncodeConfig(codec="nonsense264"))
    assert not (tmp_path / "bad.mp4").exists()


@pytest.mark.parametrize("ext", [".mp4", ".mov", ".mkv"])
@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_is_kept(tmp_path, ext, rotation):
    clip = write_clip(tmp_path / f"in{ext}", frames=3, rotation=rotation)
    out = tmp_path / f"out{ext}"
    identity_pass(clip.path, out)
    with open_video(clip.path) as before, open_video(out) as after:
        assert before.info.rotation == rotation
        assert after.info.rotation == rotation
        assert after.info.display_matrix == before.info.display_matrix


def test_no_rotation_stays_unrotated(tmp_path):
    clip = write_clip(tmp_path / "in.mp4", frames=3)
    out = tmp_path / "out.mp4"
    identity_pass(clip.path, out)
    with open_video(out) as after:
        assert after.info.rotation == 0 and after.info.display_matrix is None


@pytest.mark.parametrize(
    "color",
    [BT709, dict(color_range=2, colorspace=6, color_primaries=6, color_trc=6), dict(color_range=1, colorspace=9,
                                                                                    color_primaries=9, color_trc=14)],
    ids=["bt709-tv", "bt601-pc", "bt2020-tv"],
)
def test_colour_properties_are_kept(tmp_path, color):
    clip = write_clip(tmp_path / "in.mp4", frames=4, color=color)
    out = tmp_path / "out.mp4"
    identity_pass(clip.path, out)
    with open_video(out) as after:
        info = after.info
        assert (info.color_range, info.color_space, info.color_primaries, info.color_trc) == tuple(color.values())
    before = _images(clip.path)
    after_images = _images(out)
    assert _psnr(after_images[1], before[1], 255) > 35


def test_rgb_input_is_tagged_as_what_it_became(tmp_path):
    # QuickTime RLE is RGB; the output is YUV and must say which matrix.
    clip = write_clip(tmp_path / "in.mov", codec="qtrle", pix_fmt="rgb24", frames=4)
    out = tmp_path / "out.mp4"
    sink = identity_pass(clip.path, out)
    with open_video(out) as after:
        assert (after.info.pix_fmt, after.info.color_space, after.info.color_range) == ("yuv420p", 1, 1)
    assert any("rgb24 encoded as yuv420p" in n for n in sink.notes)
    assert _psnr(_images(out)[2], _images(clip.path)[2], 255) > 30


# -- privacy metadata ----------------------------------------------------------


def _private_clip(tmp_path):
    return write_clip(
        tmp_path / "in.mp4", frames=6, audio=("aac",), tags=PRIVATE_TAGS,
        video_tags={"location": "+1+2/", "handler_name": "DJI.AVC"}, subtitle="mov_text",
        options={"movflags": "use_metadata_tags"},
    )


def test_private_tags_and_telemetry_dropped_by_default(tmp_path):
    clip = _private_clip(tmp_path)
    with av.open(str(clip.path)) as container:
        assert "com.apple.quicktime.location.ISO6709" in container.metadata  # the input really has them
    out = tmp_path / "out.mp4"
    sink = identity_pass(clip.path, out)
    with av.open(str(out)) as container:
        tags = dict(container.metadata)
        stream_tags = [dict(s.metadata) for s in container.streams]
        types = [s.type for s in container.streams]
    values = set(tags.values()) | {v for t in stream_tags for v in t.values()}
    assert not any("52.37" in v or v in ("DJI", "FC3170", "Jan Jansen", "DJI.AVC", "+1+2/") for v in values)
    assert not any(k.startswith("com.apple") or "location" in k for k in tags)
    assert "subtitle" not in types
    assert stream_tags[types.index("audio")]["language"] == "eng"
    assert any("subtitle stream" in n and "dropped" in n for n in sink.notes)
    assert any("location" in n for n in sink.notes)


def test_keep_metadata_keeps_tags_and_subtitles(tmp_path):
    clip = _private_clip(tmp_path)
    out = tmp_path / "out.mp4"
    identity_pass(clip.path, out, EncodeConfig(preset="ultrafast", keep_metadata=True))
    with av.open(str(out)) as container:
        tags = dict(container.metadata)
        assert tags["com.apple.quicktime.location.ISO6709"] == PRIVATE_TAGS["com.apple.quicktime.location.ISO6709"]
        assert tags["make"] == "DJI" and tags["artist"] == "Jan Jansen"
        assert [s.type for s in container.streams] == ["video", "audio", "subtitle"]

    def texts(path):  # the mov muxer adds empty gap-filler samples
        return [p for p in packets_by_stream(path, "subtitle")[0] if len(p) > 2]

    assert texts(out) == texts(clip.path) and len(texts(out)) == 2


def test_subtitles_the_container_cannot_hold_are_skipped(tmp_path):
    clip = write_clip(tmp_path / "in.mkv", frames=4, subtitle="subrip")
    out = tmp_path / "out.mp4"
    sink = identity_pass(clip.path, out, EncodeConfig(preset="ultrafast", keep_metadata=True))
    assert [t for t, _ in stream_summary(out)] == ["video"]
    assert any("not copied" in n for n in sink.notes)


# -- sink contract and atomicity ----------------------------------------------


def test_exception_mid_write_leaves_no_file(tmp_path):
    clip = write_clip(tmp_path / "in.mp4", frames=10, audio=("aac",))
    out = tmp_path / "out.mp4"
    with pytest.raises(KeyError):
        with open_video(clip.path) as source, VideoSink(out, source, FAST) as sink:
            for frame in source.frames():
                sink.write(frame)
                if frame.index == 5:
                    raise KeyError("stop")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_keyboard_interrupt_mid_write_leaves_no_file(tmp_path):
    clip = write_clip(tmp_path / "in.mp4", frames=6)
    out = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        with open_video(clip.path) as source, VideoSink(out, source, FAST) as sink:
            for frame in source.frames():
                sink.write(frame)
                raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_existing_output_refused(tmp_path):
    clip = write_clip(tmp_path / "in.mp4", frames=3)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"keep me")
    with open_video(clip.path) as source:
        with pytest.raises(OutputError, match="overwrite"):
            VideoSink(out, source, FAST)
    assert out.read_bytes() == b"keep me"
    identity_pass(clip.path, out, overwrite=True)
    assert len(video_times(out)) == 3


def test_output_equal_to_input_refused(tmp_path):
    clip = write_clip(tmp_path / "in.mp4", frames=3)
    before = clip.path.read_bytes()
    with open_video(clip.path) as source:
        with pytest.raises(OutputError, match="input"):
            VideoSink(clip.path, source, FAST, overwrite=True)
    assert clip.path.read_bytes() == before


def test_unknown_extension_refused(tmp_path):
    clip = write_clip(tmp_path / "in.mp4", frames=3)
    with open_video(clip.path) as source:
        with pytest.raises(OutputError, match=r"\.mp4, \.mov, \.mkv or \.avi"):
            VideoSink(tmp_path / "out.gif", source, FAST)


def test_wrong_image_shape_is_a_shape_error(tmp_path):
    clip = write_clip(tmp_path / "in.mp4", frames=3)
    out = tmp_path / "out.mp4"
    with pytest.raises(ShapeError, match=r"\(48, 64, 3\)"):
        with open_video(clip.path) as source, VideoSink(out, source, FAST) as sink:
            frame = next(iter(source.frames()))
            sink.write(replace(frame, image=frame.image[:, :32]))
    assert not out.exists()


def test_no_frames_written_is_an_error(tmp_path):
    clip = write_clip(tmp_path / "in.mp4", frames=3)
    out = tmp_path / "out.mp4"
    with pytest.raises(OutputError, match="no frames"):
        with open_video(clip.path) as source, VideoSink(out, source, FAST):
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_written_images_reach_the_output(tmp_path):
    clip = write_clip(tmp_path / "in.mp4", frames=4, pts=[0, 50, 90, 200])
    out = tmp_path / "out.mp4"
    black = np.zeros((48, 64, 3), np.uint8)
    with open_video(clip.path) as source, VideoSink(out, source, FAST) as sink:
        for frame in source.frames():
            sink.write(DecodedFrame(frame.index, black, frame.pts, frame.time_base))
    images = _images(out)
    assert len(images) == 4 and max(int(i.max()) for i in images) <= 2
    assert video_times(out) == [Fraction(p, 1000) for p in (0, 50, 90, 200)]


# -- real clips ------------------------------------------------------------------


def test_real_clips_identity_pass(videos_dir, tmp_path):
    """Every shared clip: same frame count, timestamps, fps, size, colours, audio packets."""
    outlasting = []
    for clip in _real_clips(videos_dir):
        out = tmp_path / f"out_{clip.name}"
        times, firsts = [], []
        with open_video(clip) as source, VideoSink(out, source, FAST) as sink:
            info = source.info
            for frame in source.frames():
                times.append(frame.pts * frame.time_base)
                if frame.index < 3:
                    firsts.append(frame.image)
                sink.write(frame)
        assert not any("timestamps moved" in n for n in sink.notes), (clip.name, sink.notes)
        if info.frame_count:
            assert len(times) == info.frame_count, clip.name
        with open_video(out) as after:
            assert (after.info.width, after.info.height) == (info.width, info.height), clip.name
            assert float(after.info.fps) == pytest.approx(float(info.fps), rel=0.02), clip.name
            bias = np.zeros(3)
            count = 0
            for frame in after.frames():
                assert abs(float(frame.pts * frame.time_base - times[frame.index])) < 1e-3, (clip.name, frame.index)
                if frame.index < 3:
                    bias += (frame.image.astype(float) - firsts[frame.index].astype(float)).mean(axis=(0, 1)) / 3
                count += 1
        assert count == len(times), clip.name
        # No colour drift (swscale's fast path lost about one level per pass).
        assert np.abs(bias).max() < 0.5, (clip.name, bias)
        # Bit-identical audio, written in full even where it outlasts the video.
        assert packets_by_stream(out) == packets_by_stream(clip), clip.name
        assert audio_end_times(out) == pytest.approx(audio_end_times(clip), abs=0.05), clip.name
        if info.audio and info.duration and audio_end_times(clip)[0] > info.duration + 0.5:
            outlasting.append(clip.name)
        out.unlink()
    # The broadcast clip's audio is longer than its video.
    assert outlasting or "broadcast_whitehouse_event_360p.mp4" not in {c.name for c in _real_clips(videos_dir)}
