"""Synthetic aerial clips with known face boxes, for tests and benchmarks.

Real faces (crops of photos) are pasted as small "people" onto a large
procedural aerial background (fields, roads, roofs, trees). A virtual camera
pans, zooms and shakes over that background while the people walk; some of
them pass behind an occluder for a few frames. Every frame comes with
its ground-truth face boxes, so recall of a detector + tracker can be
measured exactly.

Coordinates: the background canvas is the "world"; at zoom 1 one world pixel
is one output pixel. Face sizes are the side of the face box (the region
MTCNN reports: brows to chin, ear to ear) in output pixels.

Examples
--------
>>> from skimage import data
>>> sprite = sprite_from_image(data.astronaut(), (170, 80, 270, 210))
>>> scene = AerialScene(width=320, height=180, n_frames=4, n_people=3)
>>> frames = [f for f, _ in render_clip(scene, [sprite])]
>>> frames[0].shape
(180, 320, 3)
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

from .checks import check_shape
from .errors import InputError, OutputError

logger = logging.getLogger(__name__)

#: A face at least this much covered by an occluder counts as hidden (nothing left to protect).
_HIDDEN = 0.85

__all__ = [
    "AerialScene",
    "FaceSprite",
    "FrameTruth",
    "GroundTruth",
    "aerial_background",
    "load_face_sprites",
    "read_truth",
    "render_clip",
    "sprite_from_image",
    "write_clip",
]


@dataclass
class FaceSprite:
    """A head to paste: an RGB crop, its soft alpha and where the face is in it.

    Attributes
    ----------
    image : ndarray of shape (h, w, 3), uint8
        The crop (face plus some hair and neck).
    alpha : ndarray of shape (h, w), float32 in [0, 1]
        Soft elliptical mask; 1 on the head, 0 on the photo's background.
    face_box : ndarray of shape (4,), float32
        ``x0, y0, x1, y1`` of the face inside ``image``.
    name : str
        Where the crop came from (identity or file stem).
    """

    image: np.ndarray
    alpha: np.ndarray
    face_box: np.ndarray
    name: str = ""


@dataclass
class AerialScene:
    """What a synthetic clip shows.

    Attributes
    ----------
    width, height : int
        Output frame size in pixels (e.g. 3840x2160 or 1920x1080).
    n_frames : int
        Number of frames.
    fps : float
        Frame rate written to the video.
    n_people : int
        People (faces) in the scene; sizes are spread log-uniformly over
        ``face_sizes`` so every size range is represented.
    face_sizes : (float, float)
        Smallest and largest face box side, in output pixels, over the whole
        clip (zoom included).
    pan : (float, float)
        Mean camera pan in output pixels per frame (x, y); the speed varies
        smoothly by ±50 % over the clip, like a drone accelerating.
    zoom : float
        Zoom factor reached at the last frame (1.25 = 25 % closer); geometric
        over time.
    shake : float
        Standard deviation of random camera jitter, in output pixels.
    walk : float
        People's walking speed in world pixels per frame.
    occlusions : int
        How many people pass behind an occluder at some point.
    occlusion_frames : (int, int)
        Range of the number of frames an occluder (a tree canopy) takes to
        slide across a face: partly covered at the start and end, fully
        hidden in the middle. The ground truth marks a face hidden while at
        least 85 % of its box is covered.
    seed : int
        Seed of everything random (background, placement, motion).
    """

    width: int = 1920
    height: int = 1080
    n_frames: int = 48
    fps: float = 25.0
    n_people: int = 10
    face_sizes: tuple[float, float] = (16.0, 120.0)
    pan: tuple[float, float] = (6.0, 2.0)
    zoom: float = 1.2
    shake: float = 0.7
    walk: float = 0.8
    occlusions: int = 2
    occlusion_frames: tuple[int, int] = (6, 10)
    seed: int = 0


@dataclass
class FrameTruth:
    """Ground truth of one frame.

    Attributes
    ----------
    ids : ndarray of shape (N,), int64
        Person index of each face.
    boxes : ndarray of shape (N, 4), float32
        Face boxes ``x0, y0, x1, y1`` in frame pixels (not clipped to the frame).
    visible : ndarray of shape (N,), bool
        False while at least 85 % of the face is hidden behind an occluder
        (there is nothing left to protect then).
    """

    ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    visible: np.ndarray = field(default_factory=lambda: np.zeros((0,), bool))

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class GroundTruth:
    """Ground truth of a whole clip: its size, rate and one :class:`FrameTruth` per frame."""

    width: int
    height: int
    fps: float
    frames: list[FrameTruth]
    names: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        """Plain-JSON view: ``{"width", "height", "fps", "names", "frames": [[{"id", "box", "visible"}]]}``."""
        return {
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "names": list(self.names),
            "frames": [
                [
                    {"id": int(i), "box": [float(v) for v in b], "visible": bool(v)}
                    for i, b, v in zip(ft.ids, ft.boxes, ft.visible)
                ]
                for ft in self.frames
            ],
        }

    @classmethod
    def from_json(cls, data: dict) -> "GroundTruth":
        frames = []
        for faces in data["frames"]:
            frames.append(
                FrameTruth(
                    np.array([f["id"] for f in faces], np.int64),
                    np.array([f["box"] for f in faces], np.float32).reshape(-1, 4),
                    np.array([f["visible"] for f in faces], bool),
                )
            )
        return cls(int(data["width"]), int(data["height"]), float(data["fps"]), frames, list(data.get("names", [])))


# --------------------------------------------------------------------------- sprites


def sprite_from_image(image: np.ndarray, face_box, *, context: float = 0.45, name: str = "") -> FaceSprite:
    """Cut a head sprite around a known face box.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), uint8
        Photo holding the face.
    face_box : sequence of 4 float
        ``x0, y0, x1, y1`` of the face in ``image``.
    context : float
        Extra border kept around the face (hair, ears, neck), as a fraction
        of the face size on each side.
    name : str
        Stored in :attr:`FaceSprite.name`.

    Returns
    -------
    FaceSprite
    """
    check_shape(image, ["H", "W", 3], "image")
    x0, y0, x1, y1 = (float(v) for v in face_box)
    w, h = x1 - x0, y1 - y0
    side = max(w, h) * (1 + 2 * context)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    # Square crop, padded by edge replication where it leaves the photo.
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    size = int(round(side))
    pad = max(0, -left, -top, left + size - image.shape[1], top + size - image.shape[0])
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else image
    crop = np.ascontiguousarray(padded[top + pad : top + pad + size, left + pad : left + pad + size])
    box = np.array([x0 - left, y0 - top, x1 - left, y1 - top], np.float32)
    # Head-shaped soft ellipse: a bit wider than the face box, taller (hair, chin).
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    ecx, ecy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2 - 0.05 * h
    rx, ry = 0.62 * w * 1.1, 0.62 * h * 1.25
    r = np.sqrt(((xx - ecx) / rx) ** 2 + ((yy - ecy) / ry) ** 2)
    alpha = np.clip((1.15 - r) / 0.3, 0.0, 1.0).astype(np.float32)
    return FaceSprite(crop, alpha, box, name)


def load_face_sprites(faces_dir: str | Path, *, count: int = 12, seed: int = 0) -> list[FaceSprite]:
    """Head sprites from a ``<identity>/*.jpg`` photo tree.

    One photo per identity (chosen with ``seed``) is read, its largest face
    found with MTCNN (facenet-pytorch weights ship with the wheel) and cut
    out with :func:`sprite_from_image`. Photos without a confident face are
    skipped, so every sprite is a real, detectable face.

    Parameters
    ----------
    faces_dir : str or Path
        Folder of identity folders of photos.
    count : int
        Maximum number of sprites.
    seed : int
        Which photo of each identity is used.

    Returns
    -------
    list of FaceSprite

    Raises
    ------
    InputError
        If the folder holds no photo with a detectable face.
    """
    from .config import DetectConfig
    from .detect.mtcnn import FaceDetector
    from skimage import io as skio

    faces_dir = Path(faces_dir)
    rng = np.random.default_rng(seed)
    people = sorted(p for p in faces_dir.iterdir() if p.is_dir()) if faces_dir.is_dir() else []
    rng.shuffle(people)
    detector = FaceDetector(DetectConfig(min_face=40, batch_size=1))
    sprites: list[FaceSprite] = []
    for person in people:
        photos = sorted(p for p in person.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        if not photos:
            continue
        photo = photos[int(rng.integers(len(photos)))]
        image = skio.imread(photo)
        if image.ndim != 3 or image.shape[2] < 3:
            continue
        image = np.ascontiguousarray(image[..., :3])
        faces = detector.detect([image])[0]
        good = faces.scores >= 0.95
        if not good.any():
            logger.debug("no confident face in %s; skipped", photo)
            continue
        boxes = faces.boxes[good]
        largest = int(np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))
        sprites.append(sprite_from_image(image, boxes[largest], name=person.name))
        if len(sprites) >= count:
            break
    if not sprites:
        raise InputError("no photo with a detectable face found; pass the data/faces folder", faces_dir)
    return sprites


# --------------------------------------------------------------------------- background


def _noise(rng: np.random.Generator, height: int, width: int, octaves: int = 5) -> np.ndarray:
    """Fractal value noise in [0, 1], (height, width) float32."""
    out = np.zeros((height, width), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        cells = 4 * 2**o
        small = rng.random((cells * height // max(height, width) + 2, cells * width // max(height, width) + 2))
        out += amp * cv2.resize(small.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= 0.55
    out /= total
    return (out - out.min()) / max(float(out.max() - out.min()), 1e-6)


def aerial_background(height: int, width: int, *, feature_size: float | None = None, seed: int = 0) -> np.ndarray:
    """A procedural aerial view: fields, roads, roofs with shadows and trees.

    Parameters
    ----------
    height, width : int
        Size in pixels.
    feature_size : float, optional
        Typical roof side in pixels (trees are about a third of it); 6 % of
        the larger side by default.
    seed : int
        Random seed.

    Returns
    -------
    ndarray of shape (height, width, 3), uint8 RGB
    """
    rng = np.random.default_rng(seed)
    unit = float(feature_size or 0.06 * max(height, width))
    area = float(height * width)
    n = _noise(rng, height, width)
    fine = rng.normal(0, 1, (height, width)).astype(np.float32)
    fine = cv2.GaussianBlur(fine, (0, 0), 1.2)
    grass = np.array([70, 110, 50], np.float32)
    soil = np.array([150, 125, 90], np.float32)
    t = np.clip((n - 0.35) / 0.3, 0, 1)[..., None]
    img = grass * (1 - t) + soil * t + fine[..., None] * 10.0

    def count(coverage: float, item_area: float) -> int:
        return max(1, int(round(coverage * area / item_area)))

    # Roads: long light strips; roofs: rectangles with a dark offset shadow; trees: dark blobs.
    for _ in range(max(2, int(round(math.sqrt(area) / (8 * unit))))):
        p0 = (int(rng.integers(width)), int(rng.integers(height)))
        p1 = (int(rng.integers(width)), int(rng.integers(height)))
        cv2.line(img, p0, p1, (165, 162, 155), max(2, int(rng.uniform(0.15, 0.35) * unit)), cv2.LINE_AA)
    shadow = max(1, int(0.06 * unit))
    for _ in range(count(0.2, unit * unit)):
        w, h = (int(v) for v in rng.uniform(0.5, 1.5, 2) * unit)
        x, y = int(rng.integers(width)), int(rng.integers(height))
        colour = tuple(float(v) for v in rng.choice([[160, 60, 50], [120, 120, 125], [190, 180, 170], [90, 70, 60]]))
        cv2.rectangle(img, (x + shadow, y + shadow), (x + w + shadow, y + h + shadow), (30, 35, 25), -1)
        cv2.rectangle(img, (x, y), (x + w, y + h), colour, -1)
        cv2.line(img, (x, y + h // 2), (x + w, y + h // 2), tuple(c * 0.8 for c in colour), max(1, shadow // 3))
    for _ in range(count(0.08, math.pi * (0.18 * unit) ** 2)):
        r = max(2, int(rng.uniform(0.08, 0.28) * unit))
        c = (int(rng.integers(width)), int(rng.integers(height)))
        cv2.circle(img, c, r, (30, 60, 25), -1, cv2.LINE_AA)
        cv2.circle(img, (c[0] - r // 4, c[1] - r // 4), max(1, r // 2), (45, 85, 35), -1, cv2.LINE_AA)
    return np.clip(img, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- scene


@dataclass
class _Person:
    sprite: int
    world: np.ndarray  # face centre at frame 0, world px
    velocity: np.ndarray  # world px per frame
    size: float  # face side in world px
    body: tuple[int, int, int]
    hidden: tuple[int, int]  # frames [a, b) during which an occluder sweeps over the face


def _camera(scene: AerialScene, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame camera centre (world px) and zoom."""
    t = np.arange(scene.n_frames, dtype=np.float64)
    n = max(scene.n_frames - 1, 1)
    # Speed varies by +-50 % so a tracker cannot rely on a constant pan.
    speed = 1.0 + 0.5 * np.sin(2 * np.pi * t / max(n, 1) + rng.uniform(0, 2 * np.pi))
    travel = np.cumsum(speed) - speed[0]
    centre = np.stack([travel * scene.pan[0], travel * scene.pan[1]], 1)
    centre += rng.normal(0, scene.shake, centre.shape)
    zoom = scene.zoom ** (t / n)
    return centre, zoom


def _plan(scene: AerialScene, n_sprites: int, rng: np.random.Generator):
    centre, zoom = _camera(scene, rng)
    W, H = scene.width, scene.height
    # The region every frame sees (intersection of the views), where people are put.
    half_w, half_h = W / (2 * zoom.max()), H / (2 * zoom.max())
    lo = np.array([centre[:, 0].max() - half_w, centre[:, 1].max() - half_h])
    hi = np.array([centre[:, 0].min() + half_w, centre[:, 1].min() + half_h])
    if np.any(hi - lo < 40):  # the camera travels so far that no point stays in view: use the first view
        lo = centre[0] - [W / (2 * zoom[0]), H / (2 * zoom[0])]
        hi = centre[0] + [W / (2 * zoom[0]), H / (2 * zoom[0])]
    smin, smax = scene.face_sizes
    # Output size = world size * zoom; keep every face within face_sizes over the clip.
    sizes = np.geomspace(smin / zoom.min(), smax / zoom.max(), max(scene.n_people, 1))[: scene.n_people]
    sizes = np.maximum(sizes, smin / zoom.min())
    rng.shuffle(sizes)
    people = []
    placed: list[tuple[np.ndarray, float]] = []
    occluded = set(rng.choice(scene.n_people, min(scene.occlusions, scene.n_people), replace=False).tolist())
    for i, size in enumerate(sizes):
        pad = size * 1.5 + scene.walk * scene.n_frames
        # Keep people apart so faces never overlap: the best of many random spots.
        best, pos = -np.inf, None
        for _ in range(200):
            cand = rng.uniform(lo + pad, np.maximum(hi - pad, lo + pad + 1))
            clearance = min((np.linalg.norm(cand - p) / (size + s) for p, s in placed), default=np.inf)
            if clearance > best:
                best, pos = clearance, cand
            if clearance > 2.2:
                break
        placed.append((pos, size))
        angle = rng.uniform(0, 2 * np.pi)
        velocity = scene.walk * np.array([math.cos(angle), math.sin(angle)])
        hidden = (0, 0)
        if i in occluded and scene.n_frames > 4:
            length = int(rng.integers(scene.occlusion_frames[0], scene.occlusion_frames[1] + 1))
            length = min(length, scene.n_frames - 2)
            start = int(rng.integers(1, max(2, scene.n_frames - length)))
            hidden = (start, start + length)
        body = tuple(int(v) for v in rng.integers(30, 230, 3))
        people.append(_Person(i % n_sprites, pos, velocity, float(size), body, hidden))
    return centre, zoom, people


def _paste(frame: np.ndarray, sprite: FaceSprite, face_box_out: np.ndarray) -> None:
    """Alpha-blend ``sprite`` so that its face lands on ``face_box_out`` (in place)."""
    fb = sprite.face_box
    scale = (face_box_out[2] - face_box_out[0]) / (fb[2] - fb[0])
    h, w = sprite.image.shape[:2]
    nw, nh = max(2, int(round(w * scale))), max(2, int(round(h * scale)))
    sx, sy = nw / w, nh / h
    # INTER_AREA first (no aliasing of a 300 px photo shrunk to 16 px), then a sub-pixel shift.
    img = cv2.resize(sprite.image, (nw, nh), interpolation=cv2.INTER_AREA).astype(np.float32)
    alpha = cv2.resize(sprite.alpha, (nw, nh), interpolation=cv2.INTER_AREA)
    ox = face_box_out[0] - fb[0] * sx
    oy = face_box_out[1] - fb[1] * sy
    x0, y0 = int(math.floor(ox)), int(math.floor(oy))
    m = np.float32([[1, 0, ox - x0], [0, 1, oy - y0]])
    img = cv2.warpAffine(img, m, (nw + 1, nh + 1), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    alpha = cv2.warpAffine(alpha, m, (nw + 1, nh + 1), flags=cv2.INTER_LINEAR, borderValue=0)
    H, W = frame.shape[:2]
    fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(W, x0 + nw + 1), min(H, y0 + nh + 1)
    if fx1 <= fx0 or fy1 <= fy0:
        return
    a = alpha[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0, None]
    src = img[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    dst = frame[fy0:fy1, fx0:fx1].astype(np.float32)
    frame[fy0:fy1, fx0:fx1] = np.clip(dst * (1 - a) + src * a + 0.5, 0, 255).astype(np.uint8)


def render_clip(scene: AerialScene, sprites: Sequence[FaceSprite]) -> Iterator[tuple[np.ndarray, FrameTruth]]:
    """Render the clip frame by frame (memory holds one frame and the background).

    Parameters
    ----------
    scene : AerialScene
        What to show.
    sprites : sequence of FaceSprite
        Faces to paste; reused cyclically when there are more people.

    Yields
    ------
    frame : ndarray of shape (scene.height, scene.width, 3), uint8 RGB
    truth : FrameTruth
        Boxes of every person whose face is at least half inside the frame.
    """
    if not sprites:
        raise ValueError("render_clip needs at least one face sprite")
    rng = np.random.default_rng(scene.seed)
    centre, zoom, people = _plan(scene, len(sprites), rng)
    W, H = scene.width, scene.height
    # World canvas: union of all views plus room for the people.
    half = np.array([W, H]) / (2 * zoom.min())
    lo = np.floor(centre.min(0) - half - 8).astype(int)
    hi = np.ceil(centre.max(0) + half + 8).astype(int)
    background = aerial_background(
        int(hi[1] - lo[1]), int(hi[0] - lo[0]), feature_size=0.07 * max(W, H) / zoom.mean(), seed=scene.seed + 1
    )
    world_to_canvas = -lo.astype(np.float64)
    for t in range(scene.n_frames):
        z = zoom[t]
        c = centre[t]
        # world -> frame: (p - c) * z + (W/2, H/2); the background lives at canvas = world - lo.
        m = np.array([[z, 0, W / 2 - z * (c[0] + world_to_canvas[0])], [0, z, H / 2 - z * (c[1] + world_to_canvas[1])]])
        frame = cv2.warpAffine(background, m, (W, H), flags=cv2.INTER_LINEAR if z >= 1 else cv2.INTER_AREA,
                               borderMode=cv2.BORDER_REFLECT)
        ids, boxes, visible = [], [], []
        occluders = []
        for i, p in enumerate(people):
            pos = p.world + p.velocity * t
            fc = (pos - c) * z + (W / 2, H / 2)
            s = p.size * z
            box = np.array([fc[0] - s / 2, fc[1] - s / 2, fc[0] + s / 2, fc[1] + s / 2], np.float32)
            # Body: a shoulders-and-torso ellipse below the head (seen obliquely from above).
            cv2.ellipse(frame, (int(fc[0]), int(fc[1] + 1.5 * s)), (max(1, int(0.75 * s)), max(1, int(1.1 * s))),
                        0, 0, 360, p.body, -1, cv2.LINE_AA)
            _paste(frame, sprites[p.sprite], box)
            hidden = False
            if p.hidden[0] <= t < p.hidden[1]:
                # A tree canopy slides across the head: partly covered at first,
                # then hidden, then partly again (where detectors fail but faces leak).
                length = p.hidden[1] - p.hidden[0]
                dx = s * (-2.0 + 4.0 * (t - p.hidden[0] + 0.5) / length)
                radius = 1.25 * s
                occluders.append(((int(round(fc[0] + dx)), int(round(fc[1]))), max(2, int(round(radius)))))
                g = (np.arange(12) + 0.5) / 12 - 0.5
                gx, gy = np.meshgrid(g * s, g * s)
                covered = float(np.mean((gx - dx) ** 2 + gy**2 <= radius**2))
                hidden = covered >= _HIDDEN
            inside = (min(box[2], W) - max(box[0], 0)) * (min(box[3], H) - max(box[1], 0))
            if min(box[2], W) > max(box[0], 0) and min(box[3], H) > max(box[1], 0) and inside >= 0.5 * s * s:
                ids.append(i)
                boxes.append(box)
                visible.append(not hidden)
        for centre_px, radius_px in occluders:  # above every person
            cv2.circle(frame, centre_px, radius_px, (35, 70, 30), -1, cv2.LINE_AA)
        yield frame, FrameTruth(
            np.array(ids, np.int64), np.array(boxes, np.float32).reshape(-1, 4), np.array(visible, bool)
        )


def write_clip(
    path: str | Path,
    scene: AerialScene,
    sprites: Sequence[FaceSprite],
    *,
    truth_path: str | Path | None = None,
    crf: int = 16,
) -> GroundTruth:
    """Render ``scene`` to an H.264 mp4 and its ground truth to JSON.

    Parameters
    ----------
    path : str or Path
        Output video (``.mp4``), written with PyAV/libx264, yuv420p.
    scene : AerialScene
        What to show (``width`` and ``height`` must be even for yuv420p).
    sprites : sequence of FaceSprite
        Faces to paste.
    truth_path : str or Path, optional
        Ground-truth JSON; ``<path>.json`` (suffix replaced) by default.
    crf : int
        x264 quality (lower is better); small faces need a low value.

    Returns
    -------
    GroundTruth
        What was written to ``truth_path``.
    """
    import av

    path = Path(path)
    truth_path = Path(truth_path) if truth_path is not None else path.with_suffix(".json")
    if scene.width % 2 or scene.height % 2:
        raise ValueError(f"width and height must be even for yuv420p, got {scene.width}x{scene.height}")
    frames: list[FrameTruth] = []
    try:
        container = av.open(str(path), mode="w")
    except OSError as ex:
        raise OutputError(f"cannot write the clip: {ex}", path) from ex
    with container:
        stream = container.add_stream("libx264", rate=Fraction(scene.fps).limit_denominator(1001))
        stream.width, stream.height = scene.width, scene.height
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for image, truth in render_clip(scene, sprites):
            frames.append(truth)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    gt = GroundTruth(scene.width, scene.height, scene.fps, frames, [s.name for s in sprites])
    tmp = truth_path.with_name(truth_path.name + ".tmp")
    tmp.write_text(json.dumps(gt.to_json()))
    os.replace(tmp, truth_path)
    return gt


def read_truth(path: str | Path) -> GroundTruth:
    """Read the JSON written by :func:`write_clip`."""
    path = Path(path)
    try:
        return GroundTruth.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError) as ex:
        raise InputError(f"not a synthetic-clip ground truth ({ex})", path) from ex
