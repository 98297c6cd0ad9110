"""Reading and writing media: streaming video decode/encode and atomic outputs.

``open_video`` -> :class:`VideoSource` (decode), :class:`VideoSink` (encode,
audio copy, privacy metadata), :func:`atomic_output` (all-or-nothing files).
See ``docs/video-io.md`` for what is kept and what is dropped.
"""

from .atomic import atomic_output
from .video_sink import VideoSink
from .video_source import AudioStreamInfo, DecodedFrame, StreamInfo, VideoInfo, VideoSource, open_video

__all__ = [
    "AudioStreamInfo",
    "DecodedFrame",
    "StreamInfo",
    "VideoInfo",
    "VideoSink",
    "VideoSource",
    "atomic_output",
    "open_video",
]
