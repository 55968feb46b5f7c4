#!/usr/bin/env bash
# Train on a Google Cloud GPU VM in one command: create the VM from a Deep Learning VM image
# (NVIDIA driver, Docker and the NVIDIA Container Toolkit included), copy the repository's
# committed HEAD and the Kaggle credentials, build the image there and run `python -m job doctor`
# in it before anything trains (a failing doctor brings its report back and ends the run), then
# `make docker-train`, bring the VM's run folders back into runs/, optionally submit, and delete
# the VM, also on failure.
# Run `scripts/cloud_vm.sh --dry-run` first: it prints every command and runs none.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/cloud_vm.sh [options]

Train on a Google Cloud GPU VM: create it, copy the repository (git HEAD) and the Kaggle
credentials, check make, Docker and the NVIDIA Container Toolkit there, build the image and run
its doctor (a failure copies doctor-<NAME>.txt back and stops before training), run
`make docker-train CONFIG=...`, copy its runs/ back into runs/, optionally submit, then delete
the VM (also when a step fails).

Options:
  --name NAME            VM name (default: digit-job-<UTC time>)
  --zone ZONE            zone with the GPU type and quota (default: us-central1-a)
  --gpu TYPE             accelerator type (default: nvidia-tesla-t4)
  --gpu-count N          GPUs on the VM; more than one trains with MirroredStrategy (default: 1)
  --machine-type TYPE    machine type; T4, V100 and P100 attach to N1 types (default: n1-standard-8)
  --image-family FAMILY  Deep Learning VM image family (default: the vm-image-family line of
                         docker/cuda-constraints.txt, whose CUDA wheels its driver runs)
  --disk-size SIZE       boot disk; the image with CUDA wheels is ~10 GB (default: 100GB)
  --project PROJECT      Google Cloud project (default: gcloud's configured project)
  --config FILE          config under configs/ to train with (default: configs/gpu.yaml)
  --spot                 a Spot VM: much cheaper, may be preempted (the run is then lost)
  --submit               submit the new run to Kaggle from the VM after training
  --keep                 keep the VM afterwards (it costs money until you delete it)
  --dry-run              print every command it would run, one per line, and run none (no
                         Kaggle credentials needed: it warns that the real run needs them)
  -h, --help             this help

Needs: gcloud (authenticated, a project with GPU quota in the zone), git, tar, and Kaggle
credentials: ${KAGGLE_CONFIG_DIR:-~/.kaggle}/kaggle.json, ~/.kaggle/access_token, or
KAGGLE_USERNAME + KAGGLE_KEY, or KAGGLE_API_TOKEN in the environment.
EOF
}

# The GPU stack's one place: the image's CUDA wheel pins and the VM image family they fit.
STACK="$(dirname "$0")/../docker/cuda-constraints.txt"
[[ -f $STACK ]] || { echo "cloud_vm.sh: $STACK not found" >&2; exit 2; }
DEFAULT_IMAGE_FAMILY=$(sed -n 's/^# vm-image-family: *//p' "$STACK")
[[ -n $DEFAULT_IMAGE_FAMILY ]] || { echo "cloud_vm.sh: $STACK has no vm-image-family line" >&2; exit 2; }

NAME="digit-job-$(date -u +%Y%m%d-%H%M%S)"
ZONE=us-central1-a
GPU=nvidia-tesla-t4
GPU_COUNT=1
MACHINE_TYPE=n1-standard-8
IMAGE_FAMILY=$DEFAULT_IMAGE_FAMILY
IMAGE_PROJECT=deeplearning-platform-release
DISK_SIZE=100GB
PROJECT=""
CONFIG=configs/gpu.yaml
SPOT=false
SUBMIT=false
KEEP=false
DRY_RUN=false
REMOTE_DIR=digit-job     # the repository on the VM, relative to the ssh user's home

die() { echo "cloud_vm.sh: $*" >&2; exit 2; }

need_value() { [[ $# -ge 2 && -n $2 && $2 != --* ]] || die "$1 needs a value (see --help)"; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --name) need_value "$@"; NAME=$2; shift 2 ;;
        --zone) need_value "$@"; ZONE=$2; shift 2 ;;
        --gpu) need_value "$@"; GPU=$2; shift 2 ;;
        --gpu-count) need_value "$@"; GPU_COUNT=$2; shift 2 ;;
        --machine-type) need_value "$@"; MACHINE_TYPE=$2; shift 2 ;;
        --image-family) need_value "$@"; IMAGE_FAMILY=$2; shift 2 ;;
        --disk-size) need_value "$@"; DISK_SIZE=$2; shift 2 ;;
        --project) need_value "$@"; PROJECT=$2; shift 2 ;;
        --config) need_value "$@"; CONFIG=$2; shift 2 ;;
        --spot) SPOT=true; shift ;;
        --submit) SUBMIT=true; shift ;;
        --keep) KEEP=true; shift ;;
        --dry-run) DRY_RUN=true; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

cd "$(dirname "$0")/.."
[[ $NAME =~ ^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$ ]] ||
    die "--name $NAME: lowercase letters, digits and hyphens, starting with a letter"
[[ $GPU_COUNT =~ ^[1-9][0-9]*$ ]] || die "--gpu-count $GPU_COUNT: expected a positive integer"
# The image holds configs/ only, and the VM gets the committed tree: the config must be there.
[[ $CONFIG == configs/* && -f $CONFIG ]] || die "--config $CONFIG: expected a file under configs/"

# A shell word as it would be typed: bare when safe, else single-quoted.
quote() {
    if [[ $1 =~ ^[-A-Za-z0-9_./:=,@%+~]+$ ]]; then
        printf '%s' "$1"
    else
        printf "'%s'" "${1//\'/\'\\\'\'}"
    fi
}

# Run a command, or in --dry-run print it on one line and run nothing.
run() {
    if $DRY_RUN; then
        local line="" word
        for word in "$@"; do line+="$(quote "$word") "; done
        echo "[dry-run] ${line% }"
    else
        "$@"
    fi
}

echo "cloud_vm.sh: VM $NAME in $ZONE, $GPU_COUNT x $GPU$($SPOT && echo ' (spot)'), config $CONFIG" >&2

GCLOUD=(gcloud)
[[ -n $PROJECT ]] && GCLOUD+=(--project "$PROJECT")

# --quiet: the first ssh creates gcloud's key without asking for a passphrase, which would
# otherwise stop an unattended run at a prompt.
vm_ssh() {   # vm_ssh COMMAND: run COMMAND on the VM (keepalives: training runs for a while)
    run "${GCLOUD[@]}" compute ssh "$NAME" --zone "$ZONE" --quiet \
        --ssh-flag=-oServerAliveInterval=60 --command "$1"
}

vm_scp() {   # vm_scp FROM TO, either side NAME:path
    run "${GCLOUD[@]}" compute scp --zone "$ZONE" --quiet "$@"
}

if $DRY_RUN; then
    WORK="${TMPDIR:-/tmp}/cloud_vm.XXXXXX"   # what mktemp would make; nothing is created
else
    command -v gcloud >/dev/null || die "gcloud not found: install the Google Cloud CLI"
    WORK=$(mktemp -d)
fi

# Kaggle credentials as one file for the VM's ~/.kaggle (mounted read-only into the container).
# A file written here from the environment is made 0600 before any byte goes in.
find_credentials() {
    local dir="${KAGGLE_CONFIG_DIR:-$HOME/.kaggle}"
    if [[ -f $dir/kaggle.json ]]; then
        CREDENTIALS=$dir/kaggle.json
    elif [[ -f $HOME/.kaggle/access_token ]]; then
        CREDENTIALS=$HOME/.kaggle/access_token
    elif [[ -n ${KAGGLE_USERNAME:-} && -n ${KAGGLE_KEY:-} ]]; then
        CREDENTIALS=$WORK/kaggle.json
        $DRY_RUN || (umask 077 && printf '{"username": "%s", "key": "%s"}\n' \
            "$KAGGLE_USERNAME" "$KAGGLE_KEY" >"$CREDENTIALS")
    elif [[ -n ${KAGGLE_API_TOKEN:-} ]]; then
        CREDENTIALS=$WORK/access_token
        $DRY_RUN || (umask 077 && printf '%s\n' "$KAGGLE_API_TOKEN" >"$CREDENTIALS")
    elif $DRY_RUN; then
        echo "cloud_vm.sh: WARNING: no Kaggle credentials found (~/.kaggle/kaggle.json," \
            "KAGGLE_USERNAME/KAGGLE_KEY or KAGGLE_API_TOKEN): the real run needs them" >&2
        CREDENTIALS=$dir/kaggle.json
    else
        die "no Kaggle credentials (~/.kaggle/kaggle.json, KAGGLE_USERNAME/KAGGLE_KEY or" \
            "KAGGLE_API_TOKEN): the VM would train on the embedded sample"
    fi
}
find_credentials

CREATED=false
TRAINED=false
FETCHED=false

# The VM's run folders into runs/ here, runs/latest included: tar keeps that link, where
# scp --recurse would copy its target a second time, as a folder.
fetch_runs() {
    vm_ssh "tar -C $REMOTE_DIR -czf runs.tar.gz runs" &&
        vm_scp "$NAME:runs.tar.gz" "$WORK/runs.tar.gz" &&
        run tar -xzf "$WORK/runs.tar.gz" &&
        FETCHED=true
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if $CREATED && $TRAINED && ! $FETCHED && [[ $status -ne 0 ]]; then
        echo "cloud_vm.sh: a step failed; fetching what the VM's runs/ holds" >&2
        (fetch_runs) || echo "cloud_vm.sh: could not fetch runs/ from $NAME" >&2
    fi
    if $CREATED && $KEEP; then
        echo "cloud_vm.sh: kept $NAME; delete it with: gcloud compute instances delete $NAME" \
            "--zone $ZONE" >&2
    elif $CREATED; then
        run "${GCLOUD[@]}" compute instances delete "$NAME" --zone "$ZONE" --quiet ||
            echo "cloud_vm.sh: could not delete $NAME: delete it by hand, it costs money" >&2
    fi
    $DRY_RUN || rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

$DRY_RUN || [[ -z $(git status --porcelain --untracked-files=no) ]] ||
    echo "cloud_vm.sh: uncommitted changes are not copied: the VM gets git HEAD" >&2
run git archive --format=tar.gz -o "$WORK/repo.tar.gz" HEAD

CREATE=(compute instances create "$NAME" --zone "$ZONE" --machine-type "$MACHINE_TYPE"
    --accelerator "type=$GPU,count=$GPU_COUNT" --maintenance-policy TERMINATE
    --image-family "$IMAGE_FAMILY" --image-project "$IMAGE_PROJECT"
    --boot-disk-size "$DISK_SIZE" --metadata install-nvidia-driver=True)
# Spot: preemption stops the VM (STOP keeps its disk for --keep), and cleanup deletes it.
$SPOT && CREATE+=(--provisioning-model SPOT --instance-termination-action STOP)
CREATED=true   # from here on a half-created VM is deleted too
run "${GCLOUD[@]}" "${CREATE[@]}"

# sshd comes up a little after the VM, and the driver is installed on first boot.
ready=false
for attempt in 1 2 3 4 5 6 7 8 9 10; do
    # shellcheck disable=SC2016  # $(seq 60) is for the VM's shell
    if vm_ssh 'for i in $(seq 60); do nvidia-smi >/dev/null 2>&1 && break; sleep 10; done; nvidia-smi'; then
        ready=true
        break
    fi
    $DRY_RUN && break
    echo "cloud_vm.sh: $NAME not ready (attempt $attempt of 10); retrying in 20 s" >&2
    sleep 20
done
$DRY_RUN || $ready || die "$NAME never showed a GPU over ssh (nvidia-smi)"

# What the image family should have; each missing piece names the command that adds it.
vm_ssh "command -v make >/dev/null || (sudo apt-get update -qq && sudo apt-get install -y -qq make)"
# shellcheck disable=SC2016  # {{json .Runtimes}} is docker's template, for the VM
vm_ssh 'command -v docker >/dev/null || { echo "Docker is missing: install it with: curl -fsSL https://get.docker.com | sudo sh" >&2; exit 1; }; sudo docker info --format "{{json .Runtimes}}" | grep -q nvidia || { echo "the NVIDIA Container Toolkit is missing: sudo apt-get install -y nvidia-container-toolkit && sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker" >&2; exit 1; }'

vm_scp "$WORK/repo.tar.gz" "$NAME:repo.tar.gz"
vm_ssh "mkdir -p $REMOTE_DIR && tar -xzf repo.tar.gz -C $REMOTE_DIR && rm repo.tar.gz && install -d -m 700 .kaggle"
vm_scp "$CREDENTIALS" "$NAME:.kaggle/$(basename "$CREDENTIALS")"
vm_ssh "chmod 600 .kaggle/*"

# The ssh user is not in the docker group on a fresh VM: sudo runs docker, while the files in
# runs/ still belong to the ssh user (`make docker-train` passes its uid:gid).
vm_ssh "cd $REMOTE_DIR && make docker-build DOCKER=\"sudo docker\""
# The doctor in the image just built, before any training: a VM that cannot train says why,
# and costs minutes rather than a run's hours.
if ! vm_ssh "cd $REMOTE_DIR && make docker-doctor CONFIG=$CONFIG DOCKER=\"sudo docker\" >doctor.txt 2>&1; status=\$?; cat doctor.txt; exit \$status"; then
    vm_scp "$NAME:$REMOTE_DIR/doctor.txt" "doctor-$NAME.txt" ||
        echo "cloud_vm.sh: could not copy the doctor's report back" >&2
    die "the doctor found problems on $NAME (doctor-$NAME.txt); nothing was trained"
fi
TRAINED=true
vm_ssh "cd $REMOTE_DIR && make docker-train CONFIG=$CONFIG DOCKER=\"sudo docker\""
if $SUBMIT; then
    vm_ssh "cd $REMOTE_DIR && make docker-submit DOCKER=\"sudo docker\""
fi
fetch_runs
if $DRY_RUN; then
    echo "cloud_vm.sh: dry run: nothing was run" >&2
else
    echo "cloud_vm.sh: done; runs/latest is the VM's run: tensorboard --logdir runs" >&2
fi
