"""Face tracks across frames: ids, gap bridging, look-ahead, shot cuts, JSON tracks."""

from .camera_motion import CameraMotion
from .cuts import CutDetector
from .lookahead import Lookahead
from .stage import track_faces
from .tracker import FaceTracker, Observation
from .tracks_io import TrackRecorder, Tracks, read_tracks, write_tracks
from .turned import widen_turned_boxes, widen_turned_faces

__all__ = [
    "CameraMotion",
    "CutDetector",
    "FaceTracker",
    "Lookahead",
    "Observation",
    "TrackRecorder",
    "Tracks",
    "read_tracks",
    "track_faces",
    "widen_turned_boxes",
    "widen_turned_faces",
    "write_tracks",
]
