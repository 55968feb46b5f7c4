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
  --gpu-count N          GPUs on the VM; each trains its own models, several at once (default: 1)
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

PROG=cloud_vm.sh
# shellcheck source-path=SCRIPTDIR disable=SC1091  # shellcheck -x follows it
source "$(dirname "$0")/cloud_common.sh"
set_defaults "$(dirname "$0")/.."
NAME="digit-job-$(date -u +%Y%m%d-%H%M%S)"
CONFIG=configs/gpu.yaml
SUBMIT=false
VALUE_OPTIONS+=(--name=NAME --config=CONFIG)
FLAG_OPTIONS+=(--submit=SUBMIT)
parse_options "$@"

cd "$(dirname "$0")/.."
[[ $NAME =~ ^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$ ]] ||
    die "--name $NAME: lowercase letters, digits and hyphens, starting with a letter"
[[ $GPU_COUNT =~ ^[1-9][0-9]*$ ]] || die "--gpu-count $GPU_COUNT: expected a positive integer"
# The image holds configs/ only, and the VM gets the committed tree: the config must be there.
[[ $CONFIG == configs/* && -f $CONFIG ]] || die "--config $CONFIG: expected a file under configs/"

echo "$PROG: VM $NAME in $ZONE, $GPU_COUNT x $GPU$($SPOT && echo ' (spot)'), config $CONFIG" >&2

start_work

CREATED=false
TRAINED=false
FETCHED=false

# The VM's run folders into runs/ here, runs/latest included: tar keeps that link, where
# scp --recurse would copy its target a second time, as a folder.
fetch_runs() {
    vm_ssh "$NAME" "tar -C $REMOTE_DIR -czf runs.tar.gz runs" &&
        vm_scp "$NAME:runs.tar.gz" "$WORK/runs.tar.gz" &&
        run tar -xzf "$WORK/runs.tar.gz" &&
        FETCHED=true
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if $CREATED && $TRAINED && ! $FETCHED && [[ $status -ne 0 ]]; then
        echo "$PROG: a step failed; fetching what the VM's runs/ holds" >&2
        (fetch_runs) || echo "$PROG: could not fetch runs/ from $NAME" >&2
    fi
    if $CREATED && $KEEP; then
        echo "$PROG: kept $NAME; delete it with: gcloud compute instances delete $NAME" \
            "--zone $ZONE" >&2
    elif $CREATED; then
        run "${GCLOUD[@]}" compute instances delete "$NAME" --zone "$ZONE" --quiet ||
            echo "$PROG: could not delete $NAME: delete it by hand, it costs money" >&2
    fi
    $DRY_RUN || rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

archive_head "the VM"
CREATED=true   # from here on a half-created VM is deleted too
create_vm "$NAME"

wait_for_gpu "$NAME" || exit 2
check_vm_tools "$NAME"

vm_scp "$WORK/repo.tar.gz" "$NAME:repo.tar.gz"
vm_ssh "$NAME" "mkdir -p $REMOTE_DIR && tar -xzf repo.tar.gz -C $REMOTE_DIR && rm repo.tar.gz && install -d -m 700 .kaggle"
vm_scp "$CREDENTIALS" "$NAME:.kaggle/$(basename "$CREDENTIALS")"
vm_ssh "$NAME" "chmod 600 .kaggle/*"

# The ssh user is not in the docker group on a fresh VM: sudo runs docker, while the files in
# runs/ still belong to the ssh user (`make docker-train` passes its uid:gid).
vm_ssh "$NAME" "cd $REMOTE_DIR && make docker-build DOCKER=\"sudo docker\""
# The doctor in the image just built, before any training: a VM that cannot train says why,
# and costs minutes rather than a run's hours.
if ! vm_ssh "$NAME" "cd $REMOTE_DIR && make docker-doctor CONFIG=$CONFIG DOCKER=\"sudo docker\" >doctor.txt 2>&1; status=\$?; cat doctor.txt; exit \$status"; then
    vm_scp "$NAME:$REMOTE_DIR/doctor.txt" "doctor-$NAME.txt" ||
        echo "$PROG: could not copy the doctor's report back" >&2
    die "the doctor found problems on $NAME (doctor-$NAME.txt); nothing was trained"
fi
TRAINED=true
vm_ssh "$NAME" "cd $REMOTE_DIR && make docker-train CONFIG=$CONFIG DOCKER=\"sudo docker\""
if $SUBMIT; then
    vm_ssh "$NAME" "cd $REMOTE_DIR && make docker-submit DOCKER=\"sudo docker\""
fi
fetch_runs
if $DRY_RUN; then
    echo "$PROG: dry run: nothing was run" >&2
else
    echo "$PROG: done; runs/latest is the VM's run: tensorboard --logdir runs" >&2
fi
