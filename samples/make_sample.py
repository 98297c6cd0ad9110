"""Make ``samples/astronaut_drone.mp4``: the bundled clip the README's main command runs on.

scikit-image's astronaut photo (the one real face every install has) is
placed in a larger scene and filmed by a simulated drone: a slow pan, a
zoom-in and a slight roll, 3 s at 25 fps, 640x360 H.264, with a mono AAC
track (a tone over wind-like noise) so the audio copy can be checked.

Run ``python samples/make_sample.py [OUTPUT]``; the result is deterministic
for a given PyAV/x264 build.
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from skimage import data

WIDTH, HEIGHT, FPS, SECONDS = 640, 360, 25, 3
SAMPLE_RATE = 44100


def scene() -> np.ndarray:
    """A 1400x900 RGB backdrop (tiled textures) with the astronaut in it."""
    rng = np.random.default_rng(0)
    ground = cv2.resize(data.grass(), (1400, 900), interpolation=cv2.INTER_LINEAR)
    backdrop = np.stack([ground * 0.55, ground * 0.65, ground * 0.45], axis=-1)
    backdrop += rng.normal(0, 6, backdrop.shape)
    canvas = np.clip(backdrop, 0, 255).astype(np.uint8)
    person = data.astronaut()
    canvas[200:712, 450:962] = person
    return canvas


def camera(t: float) -> np.ndarray:
    """2x3 affine from scene to frame at time ``t`` in [0, 1]: pan, zoom, roll."""
    centre = np.array([560.0 + 240.0 * t, 400.0 + 60.0 * np.sin(np.pi * t)])
    scale = 0.55 + 0.35 * t
    angle = 4.0 * np.sin(2 * np.pi * t)
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, scale)
    m[:, 2] += np.array([WIDTH / 2, HEIGHT / 2]) - centre
    return m


def audio(n_samples: int) -> np.ndarray:
    """Mono float32 in [-1, 1]: a 440 Hz tone over low-passed noise."""
    rng = np.random.default_rng(1)
    t = np.arange(n_samples) / SAMPLE_RATE
    noise = np.convolve(rng.normal(0, 0.2, n_samples), np.ones(40) / 40, mode="same")
    return (0.2 * np.sin(2 * np.pi * 440 * t) + noise).astype(np.float32)


def make_sample(path: Path) -> None:
    world = scene()
    n = FPS * SECONDS
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.options = {"crf": "26", "preset": "slow"}
        sound = out.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        for i in range(n):
            frame = cv2.warpAffine(world, camera(i / (n - 1)), (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR)
            for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        samples = audio(SAMPLE_RATE * SECONDS)
        step = 1024
        for start in range(0, len(samples), step):
            chunk = av.AudioFrame.from_ndarray(samples[None, start : start + step], format="flt", layout="mono")
            chunk.sample_rate = SAMPLE_RATE
            chunk.pts = start
            chunk.time_base = Fraction(1, SAMPLE_RATE)
            for packet in sound.encode(chunk):
                out.mux(packet)
        for stream in (video, sound):
            for packet in stream.encode():
                out.mux(packet)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("astronaut_drone.mp4")
    make_sample(target)
    print(f"wrote {target} ({target.stat().st_size / 1e6:.2f} MB)")
