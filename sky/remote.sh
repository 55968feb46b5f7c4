# shellcheck shell=bash
# The steps that sky/train.yaml and sky/sweep.yaml run on the cloud VM, sourced by their
# `setup` and `run` blocks from SkyPilot's copy of this repository (its workdir). Each step is
# one of the Makefile's docker targets, so the VM runs exactly what `make docker-train` runs
# on a workstation: the job's own image, built on the VM from docker/Dockerfile.
#
# SkyPilot sets SKYPILOT_TASK_ID (one value for a managed job, kept across its recoveries),
# and the task passes CONFIG, STUDY, DOCTOR_CONFIG and SUBMIT as envs; OPTUNA_STORAGE and the
# Kaggle credentials arrive as SkyPilot secrets, in the environment only: they are handed to
# docker by name and never written to a file, a log line or the bucket.

# Where the task mounts its bucket (file_mounts in both task files): runs and reports
# written here outlive a preempted VM.
BUCKET_DIR=${BUCKET_DIR:-/digit-job-bucket}
# The variables docker must see, kept through sudo when the SSH user cannot reach docker.
PASSED_ENV=OPTUNA_STORAGE,KAGGLE_USERNAME,KAGGLE_KEY,KAGGLE_API_TOKEN

say() { echo "digit-job: $*" >&2; }

# The docker command: plain where the SSH user is in the docker group (SkyPilot's GPU images
# put it there), else through sudo keeping the passed variables.
docker_command() {
    if docker info >/dev/null 2>&1; then
        echo docker
    else
        echo "sudo --preserve-env=$PASSED_ENV docker"
    fi
}

# A secret left at the task's empty default is unset, so that `docker run -e NAME` passes
# nothing and the Kaggle client falls back to the credentials that were given.
drop_empty_secrets() {
    local name
    for name in KAGGLE_USERNAME KAGGLE_KEY KAGGLE_API_TOKEN OPTUNA_STORAGE; do
        [[ -n ${!name:-} ]] || unset "$name"
    done
}

# This managed job's name in the bucket: SKYPILOT_TASK_ID, which stays the same when SkyPilot
# recovers the job on a new VM, so the recovered job finds what the preempted one wrote.
job_key() {
    [[ -n ${SKYPILOT_TASK_ID:-} ]] ||
        { say "SKYPILOT_TASK_ID is not set: launch this task with sky jobs launch"; return 2; }
    echo "${SKYPILOT_TASK_ID//[^A-Za-z0-9._-]/-}"
}

# setup: make (for the docker targets) and the job's image, built from this commit.
build_image() {
    command -v make >/dev/null ||
        { sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq make; }
    make docker-build DOCKER="$(docker_command)"
}

# doctor_gate CONFIG: the doctor in the image, on this VM's GPUs, before anything trains. Its
# report goes to the job's log and to <bucket>/doctor/<job>.txt; problems end the job here
# with exit 3, and SkyPilot does not restart a job that failed on its own.
doctor_gate() {
    local config=$1 key report status=0
    key=$(job_key) || return
    mkdir -p "$BUCKET_DIR/doctor"
    report=$(mktemp)
    make docker-doctor CONFIG="$config" DOCKER="$(docker_command)" >"$report" 2>&1 || status=$?
    cat "$report"
    # Copied under a temporary name and renamed: a reader never sees half a report.
    cp "$report" "$BUCKET_DIR/doctor/.$key.txt.tmp" &&
        mv "$BUCKET_DIR/doctor/.$key.txt.tmp" "$BUCKET_DIR/doctor/$key.txt"
    rm -f "$report"
    if [[ $status -ne 0 ]]; then
        say "the doctor found problems on this VM (above; doctor/$key.txt in the bucket);" \
            "nothing was trained"
        return 3
    fi
}

finished() { grep -Eq '"status": *"complete"' "$1/manifest.json" 2>/dev/null; }

# runs_in RUNS: the run folders of RUNS (those with a manifest), oldest first: their names
# start with their UTC start time.
runs_in() {
    local manifest
    for manifest in "$1"/*/manifest.json; do
        [[ -f $manifest ]] && basename "$(dirname "$manifest")"
    done
}

# train_or_resume CONFIG: train into <bucket>/train/<job>/, the job's own runs folder. A
# recovered job finds its unfinished run there and continues it from its last checkpoint
# (`train --resume`); a job whose run completed before the VM went away trains nothing more.
train_or_resume() {
    local config=$1 key runs run unfinished="" complete=""
    key=$(job_key) || return
    runs=$BUCKET_DIR/train/$key
    mkdir -p "$runs"
    while IFS= read -r run; do
        if finished "$runs/$run"; then complete=$run; else unfinished=$run; fi
    done < <(runs_in "$runs")
    if [[ -n $unfinished ]]; then
        say "resuming train/$key/$unfinished, which a preempted VM left unfinished"
        make docker-train RUNS="$runs" RESUME="runs/$unfinished" DOCKER="$(docker_command)"
    elif [[ -n $complete ]]; then
        say "train/$key/$complete completed before; nothing to train"
    else
        say "training $config into train/$key/"
        make docker-train CONFIG="$config" RUNS="$runs" DOCKER="$(docker_command)"
    fi
}

# submit_latest: the newest complete run of this job to Kaggle, from the image. A run that
# holds a submissions.json was submitted before this VM was lost, and is not sent again.
submit_latest() {
    local key runs run latest=""
    key=$(job_key) || return
    runs=$BUCKET_DIR/train/$key
    while IFS= read -r run; do
        if finished "$runs/$run"; then latest=$run; fi
    done < <(runs_in "$runs")
    [[ -n $latest ]] || { say "no complete run in train/$key to submit"; return 1; }
    if [[ -f $runs/$latest/submissions.json ]]; then
        say "train/$key/$latest was submitted before (its submissions.json); not again"
        return 0
    fi
    make docker-submit RUNS="$runs" RUN="runs/$latest" DOCKER="$(docker_command)"
}

# require_database: OPTUNA_STORAGE, from the environment only, is a PostgreSQL URL that this
# VM reaches. Only its host and port are ever printed: the URL holds the password.
require_database() {
    local url=${OPTUNA_STORAGE:-} rest hostport host port
    [[ -n $url ]] || { say "OPTUNA_STORAGE is not set: pass it with --secret OPTUNA_STORAGE"; return 2; }
    [[ $url =~ ^postgresql(\+[a-z0-9]+)?:// ]] ||
        { say "OPTUNA_STORAGE is not a postgresql:// URL: jobs on several VMs share a study" \
            "only in a database server"; return 2; }
    rest=${url#*://}
    rest=${rest##*@}
    hostport=${rest%%[/?]*}
    host=${hostport%:*}
    port=${hostport##*:}
    [[ $port != "$hostport" ]] || port=5432
    timeout 10 bash -c "</dev/tcp/$host/$port" 2>/dev/null ||
        { say "cannot reach the database at $host:$port: open tcp:$port to these VMs" \
            "(docs/sweeps-cloud.md)"; return 4; }
}

# sweep_worker CONFIG [STUDY]: this VM's workers (one per GPU) take the study's trials until
# its budget is spent, into <bucket>/sweeps/<study>/trials/<n>/: one folder for every job of
# the sweep, so a trial retried after its VM was preempted resumes from its checkpoint there.
sweep_worker() {
    local config=$1 study=${2:-}
    make docker-sweep CONFIG="$config" RUNS="$BUCKET_DIR" ${study:+STUDY="$study"} \
        DOCKER="$(docker_command)"
}
