"""Could the attack stop earlier? Per-iteration traces of every face, and stopping rules replayed on them.

On the hard clips about half of the faces run their whole budget (60
iterations) and are blurred anyway, and those faces set the median
iterations of a warm start. This benchmark protects a window of a clip as
``vdeid process`` does (``fallback_trace.protect_window``) and records, at
every iteration of every face, the attack's loss (the random draw it takes
its gradient on: landmark jitter, compression proxy) and the deterministic
judgement the engine verifies with: the shortfall from the target (distance
minus target, the smallest over the face's references and alignment views;
>= 0 means past it) and whether the face passes. Recording adds one forward
pass per iteration (two with ``compression_margin``); the attack itself is
unchanged (the judgement draws no random numbers).

It then replays, on those traces, rules that would have changed the loop:

- **give up**: stop a face (it gets the fallback) once its best value so far
  could not reach the target in the budget it has left even at ``c`` times
  its rate of the last ``w`` iterations (from iteration ``w`` on), on the
  jittered loss or on the deterministic shortfall. Counted: the iterations
  saved, and the faces that were protected in the run but would have been
  stopped (so blurred);
- **judge every iteration**: pass a face as soon as the deterministic
  judgement does, not only when the random draw clears the target first.
  Counted: the iterations saved, and the faces that fell back although one of
  their iterates passed;
- **keep the best iterate**: how many faces that fell back, and whose last
  iterate fails, had an earlier iterate in the same attack that passed (an
  upper bound for what shipping the best iterate instead of the last gains).

Run::

    OMP_NUM_THREADS=1 python benchmarks/stop_rules.py CLIP --start 8 --frames 8 --trace-out /tmp/trace.json
    python benchmarks/stop_rules.py --trace-in /tmp/trace.json   # replay only
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _attack_settings import apply_attack_settings  # noqa: E402
from fallback_trace import protect_window  # noqa: E402

from vdeid.attacks.objectives import DodgeObjective, Objective  # noqa: E402
from vdeid.config import Config  # noqa: E402
from vdeid.engine import AdversarialMethod  # noqa: E402


class _Recording(Objective):
    """Pass-through objective that logs each active face's loss and deterministic judgement."""

    def __init__(self, inner: DodgeObjective, log: list[list]):
        self.inner = inner
        self.log = log  # per prepared sample: its rows [loss, random draw passed, passes, shortfall]

    def modules(self):
        return self.inner.modules()

    def prepare(self, images):
        self.inner.prepare(images)
        self.n = self.inner.n

    def __call__(self, images, index):
        loss, ok = self.inner(images, index)
        with torch.no_grad():
            short = self.inner.distances(images.detach(), index) - self.inner._target(index)
        # The engine's judgement is ``short > 0``, plus the fixed compression
        # proxy's check when ``compression_margin`` is set (only then is
        # ``_confirm`` needed; it would compute the distances again).
        passes = short > 0
        if self.inner.transform_margin is not None:
            passes = self.inner._confirm(images, index, passes)
        for i, row in zip(index.tolist(), zip(loss.tolist(), ok.tolist(), passes.tolist(), short.tolist())):
            self.log[i].append(list(row))
        return loss, ok

    def score(self, images, index):
        return self.inner.score(images, index)


class _RecordingEngine(AdversarialMethod):
    """The engine, with each attack's objective recorded per face (one segment per attack run)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.segments: dict[int, list] = {}  # id(job) -> segments
        self.traces: list[dict] = []
        self.chunks = 0

    def _objective(self, batch, lm, views):
        inner = super()._objective(batch, lm, views)
        if not isinstance(inner, DodgeObjective):
            raise SystemExit("stop_rules.py records the default dodging objective with one recogniser only")
        log: list[list] = [[] for _ in batch]
        for job, rows in zip(batch, log):
            self.segments.setdefault(id(job), []).append(rows)
        return _Recording(inner, log)

    def _remember(self, jobs):
        for job in jobs:
            segments = [s for s in self.segments.pop(id(job), []) if s]
            self.traces.append({"chunk": self.chunks, "frame": job.frame, "face": job.index, "warm": job.warm,
                                "iterations": job.iterations, "reached": job.reached, "segments": segments})
        self.chunks += 1
        super()._remember(jobs)


def give_up_at(segment: list, used: int, budget: int, w: int, c: float, column: int) -> Optional[int]:
    """Iteration of an attack run at which the give-up rule stops the face, or None (it passes or runs out first).

    ``column`` 0 follows the jittered loss (falls to 0), 3 the deterministic
    shortfall (rises to 0); ``used`` iterations were spent in earlier runs.
    """
    sign = -1.0 if column == 0 else 1.0
    history: list[float] = []
    for t, row in enumerate(segment):
        if row[1]:
            return None
        history.append(max(history[-1], sign * row[column]) if history else sign * row[column])
        if t >= w:
            rate = (history[t] - history[t - w]) / w
            if -history[t] > c * rate * (budget - used - t):
                return t
    return None


def replay(traces: list[dict], budget: int) -> dict:
    """The rules' effect on the recorded faces."""
    out: dict = {
        "faces": len(traces),
        "protected": sum(t["reached"] for t in traces),
        "iterations": sum(t["iterations"] for t in traces),
    }
    for name, column in (("loss", 0), ("shortfall", 3)):
        for w in (5, 10, 15):
            for c in (1.0, 2.0, 3.0):
                saved = lost = 0
                for t in traces:
                    used = 0
                    for seg in t["segments"]:
                        stop = give_up_at(seg, used, budget, w, c, column)
                        if stop is not None:
                            saved += t["iterations"] - (used + stop)
                            lost += t["reached"]
                            break
                        used += len(seg) - 1
                out[f"give up on the {name}, w={w}, c={c:g}"] = {"saved": saved, "protected lost": lost}
    saved = fell_back_passing = best_iterate = 0
    for t in traces:
        for seg in t["segments"]:
            drawn = next((i for i, r in enumerate(seg) if r[1]), None)
            judged = next((i for i, r in enumerate(seg) if r[2]), None)
            if judged is not None and (drawn is None or judged < drawn):
                saved += (drawn if drawn is not None else len(seg) - 1) - judged
                fell_back_passing += not t["reached"] and drawn is None
        last = t["segments"][-1] if t["segments"] else []
        if not t["reached"] and last and last[-1][3] < 0:
            best_iterate += any(r[3] >= 0 for r in last)
    out["judge every iteration"] = {"saved": saved, "fell back although an iterate passed": fell_back_passing}
    out["keep the best iterate"] = {"fell back, an earlier iterate of its last attack passed": best_iterate}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", type=Path, nargs="?")
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--set", dest="settings", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--trace-out", type=Path, help="write the traces (JSON)")
    parser.add_argument("--trace-in", type=Path, help="replay saved traces instead of running the engine")
    args = parser.parse_args()
    config = Config(device="cpu")
    apply_attack_settings(config.attack, args.settings)
    if args.trace_in:
        traces = json.loads(args.trace_in.read_text())
    elif args.clip:
        torch.set_num_threads(args.threads)
        engines: list[_RecordingEngine] = []

        def make(*a, **k) -> _RecordingEngine:
            engines.append(_RecordingEngine(*a, **k))
            return engines[-1]

        protect_window(args.clip, args.start, args.frames, config, make_engine=make)
        traces = engines[0].traces
        if args.trace_out:
            args.trace_out.write_text(json.dumps(traces))
    else:
        parser.error("give a CLIP or --trace-in")
    for key, value in replay(traces, int(config.attack.max_iter)).items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
