"""How well each recogniser recognises the real faces (clean photos, no attack).

For every recogniser spec it embeds the main face of each photo of
``faces/<Identity>/*.jpg`` and of the distractor photos, then prints:

- verification over all photo pairs: ROC AUC of same- vs different-identity
  distances, the equal-error rate and its distance, the distance at a false
  accept rate of 1e-3 with the true accept rate there, and the accuracy of
  the recogniser's own ``cfg.threshold`` (TAR and TRR);
- closed-set rank-1 identification, leave one out: each photo is a probe;
  enrolled are the other photos of the 37 identities plus every distractor
  (one identity each). ``centroid`` is :class:`vdeid.recognizers.gallery.GalleryHead`'s
  rule (cosine to each identity's mean unit descriptor); ``nearest`` is the
  nearest single photo under the recogniser's own metric.

Embeddings are cached in ``--cache`` (outside the repository) as .npz, so a
rerun only recomputes the tables. Run from the repository root::

    python benchmarks/recognition_quality.py \
        --recognizers dlib,mobileface:../shared/models/mobileface_v2
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import time
from pathlib import Path

import numpy as np

from vdeid.detect import FaceDetector
from vdeid.faces import Faces
from vdeid.recognizers.gallery import embed_photos, gallery_photos
from vdeid.recognizers.registry import create_recognizer

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def pair_distances(emb: np.ndarray, metric: str) -> np.ndarray:
    """(N, N) distances under ``metric`` (euclidean, or 1 - cosine)."""
    if metric == "euclidean":
        sq = (emb**2).sum(1)
        return np.sqrt(np.maximum(sq[:, None] + sq[None] - 2 * emb @ emb.T, 0))
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    return 1 - unit @ unit.T


def roc_auc(same: np.ndarray, diff: np.ndarray) -> float:
    """P(distance of a same pair < distance of a different pair), ties count half."""
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([same, diff]))
    # Mann-Whitney U of the *different* pairs being larger.
    u = ranks[len(same) :].sum() - len(diff) * (len(diff) + 1) / 2
    return float(u / (len(same) * len(diff)))


def verification(dist: np.ndarray, labels: np.ndarray, threshold: float) -> dict:
    iu = np.triu_indices(len(labels), 1)
    d = dist[iu]
    is_same = (labels[:, None] == labels[None])[iu]
    same, diff = d[is_same], d[~is_same]
    grid = np.unique(d)
    tar = np.searchsorted(np.sort(same), grid, side="right") / len(same)
    far = np.searchsorted(np.sort(diff), grid, side="right") / len(diff)
    i = int(np.argmin(np.abs((1 - tar) - far)))
    far_ok = np.nonzero(far <= 1e-3)[0]
    j = int(far_ok[-1]) if len(far_ok) else 0
    return {
        "pairs": f"{len(same)}/{len(diff)}",
        "auc": roc_auc(same, diff),
        "eer": float(((1 - tar[i]) + far[i]) / 2),
        "eer_thr": float(grid[i]),
        "thr_far1e-3": float(grid[j]),
        "tar_far1e-3": float(tar[j]),
        "cfg_thr": threshold,
        "tar_cfg": float((same < threshold).mean()),
        "trr_cfg": float((diff >= threshold).mean()),
    }


def rank1(emb: np.ndarray, labels: np.ndarray, distractors: np.ndarray, metric: str) -> dict:
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    dunit = distractors / np.linalg.norm(distractors, axis=1, keepdims=True)
    names = sorted(set(labels.tolist()))
    sums = np.stack([unit[labels == n].sum(0) for n in names])
    idx = np.array([names.index(l) for l in labels])
    correct_c = 0
    for p in range(len(labels)):
        cent = sums.copy()
        cent[idx[p]] -= unit[p]  # leave the probe out of its own centroid
        cent /= np.linalg.norm(cent, axis=1, keepdims=True)
        scores = np.concatenate([cent @ unit[p], dunit @ unit[p]])
        correct_c += int(np.argmax(scores) == idx[p])
    allemb = np.concatenate([emb, distractors])
    d = pair_distances(allemb, metric)[: len(emb)]
    np.fill_diagonal(d[:, : len(emb)], np.inf)
    nearest = np.argmin(d, axis=1)
    correct_n = int(((nearest < len(emb)) & (labels[np.minimum(nearest, len(emb) - 1)] == labels)).sum())
    return {"probes": len(labels), "gallery": len(names) + len(distractors),
            "rank1_centroid": correct_c / len(labels), "rank1_nearest": correct_n / len(labels)}


class CachedDetector:
    """A detector remembering its answers on disk, keyed by the image's bytes.

    Detection dominates the run time, and each recogniser needs the same
    faces, so a rerun (or another recogniser) reuses them.
    """

    def __init__(self, inner, file: Path):
        self.inner, self.file = inner, file
        self.known: dict[str, np.ndarray] = dict(np.load(file)) if file.is_file() else {}
        self.new = 0

    def detect(self, frames):
        out = []
        for frame in frames:
            key = hashlib.sha1(np.ascontiguousarray(frame).tobytes()).hexdigest()
            if key not in self.known:
                f = self.inner.detect([frame])[0]
                self.known[key] = np.concatenate(
                    [f.boxes, f.landmarks.reshape(-1, 10), f.scores[:, None]], axis=1
                ).astype(np.float32)
                self.new += 1
                if self.new % 200 == 0:
                    self.save()
            rows = self.known[key]
            out.append(Faces.from_arrays(rows[:, :4], rows[:, 4:14].reshape(-1, 5, 2), rows[:, 14]))
        return out

    def save(self) -> None:
        np.savez(self.file, **self.known)


def cached_embeddings(spec: str, paths: list[Path], recognizer, detector: CachedDetector, cache: Path, tag: str):
    # Keyed by the weights actually loaded, not the spec's spelling of their path.
    ident = f"{recognizer.cfg.name}:{recognizer.cfg.source}"
    key = hashlib.sha256(("\n".join(str(p) for p in paths) + ident).encode()).hexdigest()[:16]
    file = cache / f"{tag}-{recognizer.cfg.name}-{key}.npz"
    if file.is_file():
        z = np.load(file)
        return z["emb"], z["valid"]
    t = time.perf_counter()
    emb, valid = embed_photos(paths, recognizer, detector)
    logging.info("%s: %d %s photos embedded in %.0f s", spec, len(paths), tag, time.perf_counter() - t)
    np.savez(file, emb=emb, valid=valid)
    return emb, valid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recognizers", default=f"dlib,mobileface:{SHARED / 'models' / 'mobileface_v2'}")
    ap.add_argument("--faces", type=Path, default=SHARED / "data" / "faces")
    ap.add_argument("--distractors", type=Path, default=SHARED / "data" / "lfw_gallery")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/vdeid-cache/recognition_quality"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.cache.mkdir(parents=True, exist_ok=True)

    photos = gallery_photos(args.faces)
    labels_all = np.array([n for n, _ in photos])
    face_paths = [p for _, p in photos]
    distractor_paths = [p for _, p in gallery_photos(args.distractors)]
    detector = CachedDetector(FaceDetector(), args.cache / "detections.npz")

    rows = []
    for spec in [s.strip() for s in args.recognizers.split(",") if s.strip()]:
        rec = create_recognizer(spec)
        emb, valid = cached_embeddings(spec, face_paths, rec, detector, args.cache, "faces")
        demb, dvalid = cached_embeddings(spec, distractor_paths, rec, detector, args.cache, "distractors")
        labels = labels_all[valid]
        ver = verification(pair_distances(emb[valid], rec.cfg.metric), labels, rec.cfg.threshold)
        ide = rank1(emb[valid], labels, demb[dvalid], rec.cfg.metric)
        rows.append((rec.cfg, int(valid.sum()), len(valid), int(dvalid.sum()), ver, ide))

    print(f"faces: {args.faces}  distractors: {args.distractors}")
    print("| recogniser | metric | photos with a face | distractors | pairs same/diff | ROC AUC | EER | "
          "EER distance | distance at FAR 1e-3 | TAR at FAR 1e-3 | cfg threshold | TAR / TRR at cfg threshold | "
          "rank-1 centroid | rank-1 nearest |")
    print("|---" * 14 + "|")
    for cfg, nv, n, nd, ver, ide in rows:
        print(f"| {cfg.name} | {cfg.metric} | {nv}/{n} | {nd} | {ver['pairs']} | {ver['auc']:.4f} | "
              f"{ver['eer']:.3f} | {ver['eer_thr']:.3f} | {ver['thr_far1e-3']:.3f} | {ver['tar_far1e-3']:.3f} | "
              f"{ver['cfg_thr']:.3f} | {ver['tar_cfg']:.3f} / {ver['trr_cfg']:.3f} | "
              f"{ide['rank1_centroid']:.3f} | {ide['rank1_nearest']:.3f} |")


if __name__ == "__main__":
    main()
