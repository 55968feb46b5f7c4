# shellcheck shell=bash
# What the Google Cloud scripts share: option checks, the --dry-run printer, the GPU stack's
# default image family, Kaggle credentials for a VM, and the ssh/scp steps that make a fresh
# Deep Learning VM ready (GPU up, make, Docker, the NVIDIA Container Toolkit).
# Source it after setting PROG (the script's name in messages) and DRY_RUN; vm_ssh and vm_scp
# also read GCLOUD (an array: gcloud and its --project) and ZONE. scripts/cloud_sweep.sh sources
# it; scripts/cloud_vm.sh still has its own copy of these steps (its tests run it as a lone file).

die() { echo "$PROG: $*" >&2; exit 2; }

need_value() { [[ $# -ge 2 && -n $2 && $2 != --* ]] || die "$1 needs a value (see --help)"; }

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

# The GPU stack's one place: the image's CUDA wheel pins and the VM image family they fit.
stack_image_family() {   # stack_image_family REPO: the vm-image-family line of its stack file
    local stack=$1/docker/cuda-constraints.txt family
    [[ -f $stack ]] || die "$stack not found"
    family=$(sed -n 's/^# vm-image-family: *//p' "$stack")
    [[ -n $family ]] || die "$stack has no vm-image-family line"
    printf '%s\n' "$family"
}

# Kaggle credentials as one file for the VM's ~/.kaggle (mounted read-only into the container),
# in CREDENTIALS. A file written into WORK from the environment is 0600 before any byte goes in.
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
        echo "$PROG: WARNING: no Kaggle credentials found (~/.kaggle/kaggle.json," \
            "KAGGLE_USERNAME/KAGGLE_KEY or KAGGLE_API_TOKEN): the real run needs them" >&2
        CREDENTIALS=$dir/kaggle.json
    else
        die "no Kaggle credentials (~/.kaggle/kaggle.json, KAGGLE_USERNAME/KAGGLE_KEY or" \
            "KAGGLE_API_TOKEN): the VM would train on the embedded sample"
    fi
}

# --quiet: the first ssh creates gcloud's key without asking for a passphrase, which would
# otherwise stop an unattended run at a prompt.
vm_ssh() {   # vm_ssh VM COMMAND: run COMMAND on VM (keepalives: training runs for a while)
    run "${GCLOUD[@]}" compute ssh "$1" --zone "$ZONE" --quiet \
        --ssh-flag=-oServerAliveInterval=60 --command "$2"
}

vm_scp() {   # vm_scp FROM TO, either side VM:path
    run "${GCLOUD[@]}" compute scp --zone "$ZONE" --quiet "$@"
}

# sshd comes up a little after the VM, and the driver is installed on first boot.
wait_for_gpu() {   # wait_for_gpu VM
    local attempt
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        # shellcheck disable=SC2016  # $(seq 60) is for the VM's shell
        vm_ssh "$1" 'for i in $(seq 60); do nvidia-smi >/dev/null 2>&1 && break; sleep 10; done; nvidia-smi' &&
            return 0
        $DRY_RUN && return 0
        echo "$PROG: $1 not ready (attempt $attempt of 10); retrying in 20 s" >&2
        sleep 20
    done
    echo "$PROG: $1 never showed a GPU over ssh (nvidia-smi)" >&2
    return 1
}

# What the image family should have; each missing piece names the command that adds it.
check_vm_tools() {   # check_vm_tools VM
    vm_ssh "$1" "command -v make >/dev/null || (sudo apt-get update -qq && sudo apt-get install -y -qq make)" ||
        return 1
    # shellcheck disable=SC2016  # {{json .Runtimes}} is docker's template, for the VM
    vm_ssh "$1" 'command -v docker >/dev/null || { echo "Docker is missing: install it with: curl -fsSL https://get.docker.com | sudo sh" >&2; exit 1; }; sudo docker info --format "{{json .Runtimes}}" | grep -q nvidia || { echo "the NVIDIA Container Toolkit is missing: sudo apt-get install -y nvidia-container-toolkit && sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker" >&2; exit 1; }'
}
