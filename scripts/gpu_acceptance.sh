#!/usr/bin/env bash
# The first GPU machine's acceptance run, for a person with Docker (or only Python) on it:
# build the image, run the doctor in it, then train every model of configs/gpu.yaml for two
# epochs on Kaggle-sized data with XLA and mixed precision on and off, and print one table
# (s/epoch, images/s, Keras/TF) beside the on-paper estimates, then configs/fast.yaml's time
# to accuracy beside the keras-io example's; the numbers go to --out.
set -euo pipefail

usage() {
    cat <<'TXT'
Usage: scripts/gpu_acceptance.sh [--no-docker] [--out FILE] [--config FILE] [--rows TRAIN TEST]
                                 [--set KEY=VALUE ...] [--tta-rows TRAIN HELD_OUT] [--skip-tta]

  --no-docker        run in this machine's Python (PYTHON, default .venv/bin/python, made by
                     `make venv` if missing) instead of the image
  --out FILE         where the numbers go as JSON (default: acceptance.json)
  --config FILE      config under configs/ (default: configs/gpu.yaml)
  --rows TRAIN TEST  data size (default: the competition's, 42000 28000)
  --set KEY=VALUE    config override for the timed models, repeatable
  --tta-rows TRAIN HELD_OUT
                     rows for the time to accuracy of configs/fast.yaml and the keras-io
                     example (default 37800 4200; Fashion-MNIST if installed, else digits)
  --skip-tta         no time-to-accuracy runs
A failing doctor is reported and the measurements still run (on the CPU, if that is all
TensorFlow sees), so the table says what this machine does either way.
TXT
}

die() { echo "gpu_acceptance.sh: $*" >&2; exit 2; }

DOCKER_MODE=true
OUT=acceptance.json
CONFIG=configs/gpu.yaml
PASS=()
SETS=()   # --set pairs: the doctor checks the same config the models train with
while [[ $# -gt 0 ]]; do
    case $1 in
        --no-docker) DOCKER_MODE=false; shift ;;
        --out) [[ $# -ge 2 ]] || die "--out needs a file"; OUT=$2; shift 2 ;;
        --config) [[ $# -ge 2 ]] || die "--config needs a file"; CONFIG=$2; shift 2 ;;
        --rows) [[ $# -ge 3 ]] || die "--rows needs TRAIN and TEST"; PASS+=(--rows "$2" "$3"); shift 3 ;;
        --set) [[ $# -ge 2 ]] || die "--set needs KEY=VALUE"; PASS+=(--set "$2"); SETS+=(--set "$2"); shift 2 ;;
        --tta-rows) [[ $# -ge 3 ]] || die "--tta-rows needs TRAIN and HELD_OUT"; PASS+=(--tta-rows "$2" "$3"); shift 3 ;;
        --skip-tta) PASS+=(--skip-tta); shift ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

mkdir -p "$(dirname "$OUT")"
OUT_DIR=$(cd "$(dirname "$OUT")" && pwd)
OUT_NAME=$(basename "$OUT")
cd "$(dirname "$0")/.."
[[ $CONFIG == configs/* && -f $CONFIG ]] || die "--config $CONFIG: expected a file under configs/"
DOCTOR="$OUT_DIR/${OUT_NAME%.json}.doctor.txt"

if $DOCKER_MODE; then
    DOCKER=${DOCKER:-docker}
    command -v "${DOCKER%% *}" >/dev/null ||
        die "docker not found: install Docker, or run with --no-docker in this machine's Python"
    IMAGE="digit-job:$(sed -n 's/^tensorflow==//p' requirements.txt)"
    make docker-build DOCKER="$DOCKER"
    status=0
    # shellcheck disable=SC2086  # DOCKER may be "sudo docker"
    $DOCKER run --rm --gpus all -v "$PWD/configs:/app/configs:ro" "$IMAGE" doctor \
        --config "$CONFIG" "${SETS[@]}" 2>&1 | tee "$DOCTOR" || status=${PIPESTATUS[0]}
    # shellcheck disable=SC2086  # DOCKER may be "sudo docker"
    $DOCKER run --rm --gpus all --user "$(id -u):$(id -g)" -e HOME=/tmp \
        -v "$PWD/scripts:/app/scripts:ro" -v "$PWD/configs:/app/configs:ro" -v "$OUT_DIR:/app/out" \
        --entrypoint python "$IMAGE" scripts/gpu_acceptance.py --config "$CONFIG" \
        --out "/app/out/$OUT_NAME" --doctor-output "/app/out/$(basename "$DOCTOR")" \
        --doctor-status "$status" "${PASS[@]}"
else
    PY=${PYTHON:-.venv/bin/python}
    [[ -x $PY ]] || make venv
    status=0
    "$PY" -m job doctor --config "$CONFIG" "${SETS[@]}" 2>&1 | tee "$DOCTOR" || status=${PIPESTATUS[0]}
    "$PY" scripts/gpu_acceptance.py --config "$CONFIG" --out "$OUT_DIR/$OUT_NAME" \
        --doctor-output "$DOCTOR" --doctor-status "$status" "${PASS[@]}"
fi
[[ $status -eq 0 ]] || echo "gpu_acceptance.sh: the doctor found problems: $DOCTOR" >&2
