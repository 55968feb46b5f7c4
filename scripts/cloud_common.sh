# shellcheck shell=bash
# What the Google Cloud scripts share: their common options and defaults, the --dry-run
# printer, the GPU stack's default image family, Kaggle credentials for a VM, and the gcloud
# steps that create a VM and make a fresh Deep Learning VM ready (GPU up, make, Docker, the
# NVIDIA Container Toolkit). scripts/cloud_vm.sh and scripts/cloud_sweep.sh source it.
# Set PROG (the script's name in messages) before sourcing; vm_ssh and vm_scp read GCLOUD (an
# array: gcloud and its --project) and ZONE, which start_work and set_defaults set.

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

# The options both scripts take, as OPTION=VARIABLE: a value option sets VARIABLE to its value,
# a flag sets it to true. Each script appends its own before parse_options.
VALUE_OPTIONS=(--zone=ZONE --gpu=GPU --gpu-count=GPU_COUNT --machine-type=MACHINE_TYPE
    --image-family=IMAGE_FAMILY --disk-size=DISK_SIZE --project=PROJECT)
FLAG_OPTIONS=(--spot=SPOT --keep=KEEP --dry-run=DRY_RUN)

# set_defaults REPO: those options at their defaults (the image family from REPO's GPU stack),
# and the constants both scripts use on a VM.
# shellcheck disable=SC2034  # the scripts read them
set_defaults() {
    ZONE=us-central1-a
    GPU=nvidia-tesla-t4
    GPU_COUNT=1
    MACHINE_TYPE=n1-standard-8
    IMAGE_FAMILY=$(stack_image_family "$1") || exit 2
    IMAGE_PROJECT=deeplearning-platform-release
    DISK_SIZE=100GB
    PROJECT=""
    SPOT=false
    KEEP=false
    DRY_RUN=false
    REMOTE_DIR=digit-job     # the repository on the VM, relative to the ssh user's home
}

# option_variable OPTION OPTION=VARIABLE...: the VARIABLE that OPTION sets, or status 1.
option_variable() {
    local option=$1 pair
    shift
    for pair in "$@"; do
        [[ ${pair%%=*} == "$option" ]] && { printf '%s\n' "${pair#*=}"; return 0; }
    done
    return 1
}

# parse_options ARG...: each of VALUE_OPTIONS and FLAG_OPTIONS into its variable; -h or --help
# prints the script's usage and exits; anything else is one line and exit 2.
parse_options() {
    local variable
    while [[ $# -gt 0 ]]; do
        if variable=$(option_variable "$1" "${VALUE_OPTIONS[@]}"); then
            need_value "$@"
            printf -v "$variable" '%s' "$2"
            shift 2
        elif variable=$(option_variable "$1" "${FLAG_OPTIONS[@]}"); then
            printf -v "$variable" '%s' true
            shift
        elif [[ $1 == -h || $1 == --help ]]; then
            usage
            exit 0
        else
            die "unknown option $1 (see --help)"
        fi
    done
}

# The GPU stack's one place: the image's CUDA wheel pins and the VM image family they fit.
stack_image_family() {   # stack_image_family REPO: the vm-image-family line of its stack file
    local stack=$1/docker/cuda-constraints.txt family
    [[ -f $stack ]] || die "$stack not found"
    family=$(sed -n 's/^# vm-image-family: *//p' "$stack")
    [[ -n $family ]] || die "$stack has no vm-image-family line"
    printf '%s\n' "$family"
}

# start_work: GCLOUD (gcloud, with --project when given), WORK (a new temporary folder; in a
# dry run only the name mktemp would make, and nothing is created) and CREDENTIALS.
start_work() {
    GCLOUD=(gcloud)
    [[ -n $PROJECT ]] && GCLOUD+=(--project "$PROJECT")
    if $DRY_RUN; then
        WORK="${TMPDIR:-/tmp}/${PROG%.sh}.XXXXXX"
    else
        command -v gcloud >/dev/null || die "gcloud not found: install the Google Cloud CLI"
        WORK=$(mktemp -d)
    fi
    find_credentials
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

# archive_head WHO: git HEAD as WORK/repo.tar.gz, what WHO ("the VM", "the VMs") gets.
archive_head() {
    $DRY_RUN || [[ -z $(git status --porcelain --untracked-files=no) ]] ||
        echo "$PROG: uncommitted changes are not copied: $1 gets git HEAD" >&2
    run git archive --format=tar.gz -o "$WORK/repo.tar.gz" HEAD
}

# create_vm VM [FLAG...]: VM from the image family with the GPU options, and FLAGs. A Spot VM
# is stopped when preempted (STOP keeps its disk: for --keep, and for the files on it).
create_vm() {
    local create=(compute instances create "$1" --zone "$ZONE" --machine-type "$MACHINE_TYPE"
        --accelerator "type=$GPU,count=$GPU_COUNT" --maintenance-policy TERMINATE
        --image-family "$IMAGE_FAMILY" --image-project "$IMAGE_PROJECT"
        --boot-disk-size "$DISK_SIZE" --metadata install-nvidia-driver=True "${@:2}")
    if $SPOT; then
        create+=(--provisioning-model SPOT --instance-termination-action STOP)
    fi
    run "${GCLOUD[@]}" "${create[@]}"
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
