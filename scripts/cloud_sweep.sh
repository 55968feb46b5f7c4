#!/usr/bin/env bash
# One hyperparameter sweep over N Google Cloud GPU VMs sharing one Optuna study in PostgreSQL:
# create the VMs, make each ready like scripts/cloud_vm.sh does (GPU, make, Docker, the NVIDIA
# Container Toolkit, git HEAD, Kaggle credentials, the storage env file, image, doctor), run
# `make docker-sweep` on all of them at once, bring every VM's trial folders back into
# runs/sweeps/<study>/trials/, delete the VMs (also on failure) and rebuild the summary here.
# Run it with --dry-run first: it prints every command and runs none. docs/sweeps-cloud.md
# sets up the database.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/cloud_sweep.sh --storage-env FILE --vms N [options]

Run one sweep over N Google Cloud GPU VMs: create <name>-1 .. <name>-N, copy the repository
(git HEAD), the Kaggle credentials and the storage env file to each, check make, Docker and the
NVIDIA Container Toolkit there, build the image, run its doctor (a failure copies
doctor-<VM>.txt back and stops before any trial) and check the VM reaches the database; then
run `make docker-sweep` on every VM at once (one worker per GPU, all taking trials from the
one study until its budget is spent), copy each VM's runs/sweeps/<study>/trials/ back into
runs/sweeps/<study>/trials/ (a trial folder already here is kept, never overwritten), delete the
VMs (also when a step fails) and run `make sweep-summary STUDY=<study>` here.

The PostgreSQL URL never goes on a command line: FILE (mode 600) holds one line
    OPTUNA_STORAGE=postgresql://user:password@host:5432/db
unquoted, as `docker --env-file` reads it. Each VM gets a mode-600 copy that its make reads.

Spot VMs are fine: a preempted worker hands its trial back (SIGTERM) or stops sending the
study's heartbeat, and the trial is retried on another worker; the preempted VM is started
again at the end only to fetch the trial folders it finished.

Options:
  --storage-env FILE     the env file with OPTUNA_STORAGE=postgresql://... (required)
  --vms N                how many VMs (required)
  --summary-env FILE     env file for the summary here, when this machine reaches the database
                         by another URL, e.g. through an ssh tunnel (default: --storage-env)
  --name PREFIX          VM names PREFIX-1 .. PREFIX-N (default: digit-sweep-<UTC time>)
  --zone ZONE            zone with the GPU type and quota for N VMs (default: us-central1-a)
  --gpu TYPE             accelerator type (default: nvidia-tesla-t4)
  --gpu-count N          GPUs per VM, one sweep worker each (default: 1)
  --machine-type TYPE    machine type; T4, V100 and P100 attach to N1 types (default: n1-standard-8)
  --image-family FAMILY  Deep Learning VM image family (default: the vm-image-family line of
                         docker/cuda-constraints.txt, whose CUDA wheels its driver runs)
  --disk-size SIZE       boot disk; the image with CUDA wheels is ~10 GB (default: 100GB)
  --project PROJECT      Google Cloud project (default: gcloud's configured project)
  --tag TAG              network tag of the VMs, the source the database's firewall rule
                         allows (default: digit-sweep)
  --config FILE          sweep file under configs/ (default: configs/sweep.yaml)
  --study NAME           the study (default: the sweep file's sweep.study)
  --doctor-config FILE   config the doctor checks (default: what the sweep file extends, else
                         configs/gpu.yaml)
  --spot                 Spot VMs: much cheaper; a preempted VM's trial is retried elsewhere
  --keep                 keep the VMs afterwards (they cost money until you delete them)
  --dry-run              print every command it would run, one per line, and run none
  -h, --help             this help

Needs: gcloud (authenticated, a project with GPU quota for N VMs in the zone), git, tar, Kaggle
credentials (as for scripts/cloud_vm.sh) and a PostgreSQL database the VMs reach
(docs/sweeps-cloud.md). Exit status: 2 for a bad option or a failed doctor, 1 when a step or a
VM's sweep failed, else 0.
EOF
}

PROG=cloud_sweep.sh
REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source-path=SCRIPTDIR disable=SC1091  # shellcheck -x follows it
source "$(dirname "$0")/cloud_common.sh"
set_defaults "$REPO"
STORAGE_ENV=""
SUMMARY_ENV=""
VMS=""
PREFIX="digit-sweep-$(date -u +%Y%m%d-%H%M%S)"
TAG=digit-sweep
CONFIG=configs/sweep.yaml
STUDY=""
DOCTOR_CONFIG=""
REMOTE_ENV=optuna.env    # the storage env file on the VM, in the ssh user's home
VALUE_OPTIONS+=(--storage-env=STORAGE_ENV --summary-env=SUMMARY_ENV --vms=VMS --name=PREFIX
    --tag=TAG --config=CONFIG --study=STUDY --doctor-config=DOCTOR_CONFIG)
parse_options "$@"

# check_env_file OPTION FILE: the file as an absolute path, or one line on why it will not do.
# The URL's value is never printed; the file holds one unquoted line, as docker --env-file reads.
check_env_file() {
    local option=$1 file=$2 mode lines
    [[ -n $file ]] || die "$option FILE is required: a mode-600 file holding" \
        "OPTUNA_STORAGE=postgresql://user:password@host:5432/db (see --help)"
    [[ -e $file ]] || die "$option $file: not found"
    [[ -f $file && -r $file ]] || die "$option $file: not a readable file"
    mode=$(ls -lLd "$file") && mode=${mode:0:10}   # -L: the file a link points to
    [[ ${mode:4:6} == ------ ]] ||
        die "$option $file: other users may read it ($mode): chmod 600 $(quote "$file")"
    lines=$(grep -c '^OPTUNA_STORAGE=' "$file" || true)
    [[ $lines -gt 0 ]] || die "$option $file: no OPTUNA_STORAGE= line;" \
        "expected OPTUNA_STORAGE=postgresql://user:password@host:5432/db"
    [[ $lines -eq 1 ]] || die "$option $file: $lines OPTUNA_STORAGE= lines; keep one"
    grep -Eq '^OPTUNA_STORAGE=postgresql(\+[a-z0-9]+)?://' "$file" ||
        die "$option $file: OPTUNA_STORAGE is not a postgresql:// URL (unquoted); VMs share" \
            "a study only in a database server, SQLite is for one machine (docs/sweeps-cloud.md)"
    printf '%s/%s\n' "$(cd "$(dirname "$file")" && pwd)" "$(basename "$file")"
}

# A top-level `key: value` (SECTION "") or one in the top-level SECTION mapping, unquoted and
# without its comment; nothing when absent. Enough for `extends` and `sweep.study`.
yaml_scalar() {   # yaml_scalar FILE SECTION KEY
    awk -v section="$2" -v key="$3" '
        /^[^[:space:]#]/ { inside = (section != "" && index($0, section ":") == 1) }
        (section == "" && index($0, key ":") == 1) || (inside && $0 ~ "^[[:space:]]+" key ":") {
            sub("^[[:space:]]*" key ":[[:space:]]*", ""); sub("[[:space:]]+#.*$", "")
            gsub(/^["\047]|["\047]$/, ""); print; exit
        }' "$1"
}

extends_chain() {   # extends_chain FILE: FILE, the file it extends, and so on, one a line
    local file=$1 base _
    for _ in 1 2 3 4 5 6 7 8; do   # a loop of extends is the loader's error to report
        printf '%s\n' "$file"
        base=$(yaml_scalar "$file" "" extends)
        [[ -n $base && -f $(dirname "$file")/$base ]] || return 0
        file=$(dirname "$file")/$base
    done
}

# The study of a sweep file: its sweep.study, else that of what it extends, else the sweep
# settings' default; nothing when neither it nor what it extends has a sweep: section.
sweep_study() {   # sweep_study FILE
    local file study="" sweep=false
    while IFS= read -r file; do
        grep -q '^sweep:' "$file" && sweep=true
        [[ -n $study ]] || study=$(yaml_scalar "$file" sweep study)
    done < <(extends_chain "$1")
    $sweep && printf '%s\n' "${study:-sweep}"
}

# What the doctor checks: the plain config under the sweep file (the first one it extends with
# no sweep: section, which the trials build on), else configs/gpu.yaml.
doctor_config() {   # doctor_config FILE
    local file
    while IFS= read -r file; do
        grep -q '^sweep:' "$file" && continue
        [[ $file == configs/* && $file != *..* ]] && { printf '%s\n' "$file"; return; }
        break
    done < <(extends_chain "$1")
    echo configs/gpu.yaml
}

# Validation: each mistake is one line and exit 2, before any gcloud command.
STORAGE_ENV=$(check_env_file --storage-env "$STORAGE_ENV") || exit 2
if [[ -n $SUMMARY_ENV ]]; then
    SUMMARY_ENV=$(check_env_file --summary-env "$SUMMARY_ENV") || exit 2
else
    SUMMARY_ENV=$STORAGE_ENV
fi
[[ -n $VMS ]] || die "--vms N is required: how many VMs share the sweep"
[[ $VMS =~ ^[1-9][0-9]*$ ]] || die "--vms $VMS: expected a positive integer"
[[ $GPU_COUNT =~ ^[1-9][0-9]*$ ]] || die "--gpu-count $GPU_COUNT: expected a positive integer"
[[ $PREFIX-$VMS =~ ^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$ ]] ||
    die "--name $PREFIX: lowercase letters, digits and hyphens, starting with a letter," \
        "at most $((62 - ${#VMS})) characters"
[[ $TAG =~ ^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$ ]] ||
    die "--tag $TAG: lowercase letters, digits and hyphens, starting with a letter"
cd "$REPO"
# The image holds configs/ only, and the VMs get the committed tree: the config must be there.
[[ $CONFIG == configs/* && -f $CONFIG ]] || die "--config $CONFIG: expected a file under configs/"
found=$(sweep_study "$CONFIG") ||
    die "--config $CONFIG: no sweep: section; a sweep file extends a config and adds one"
[[ -n $STUDY ]] || STUDY=$found
[[ $STUDY =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$ ]] ||
    die "study $(quote "$STUDY"): expected letters, digits, . _ - (set sweep.study or --study)"
[[ -n $DOCTOR_CONFIG ]] || DOCTOR_CONFIG=$(doctor_config "$CONFIG")
[[ $DOCTOR_CONFIG == configs/* && -f $DOCTOR_CONFIG ]] ||
    die "--doctor-config $DOCTOR_CONFIG: expected a file under configs/"


fail() { echo "$PROG: $*" >&2; exit 1; }

vm_name() { printf '%s-%s\n' "$PREFIX" "$1"; }

echo "$PROG: study $STUDY on $(vm_name "1..$VMS") in $ZONE, $GPU_COUNT x $GPU" \
    "each$($SPOT && echo ' (spot)'), config $CONFIG, storage from $STORAGE_ENV" >&2

start_work

TRIALS=runs/sweeps/$STUDY/trials                 # here and, under REMOTE_DIR, on each VM
# The make on a VM gets the URL from its env file (never empty: storage "auto" would be a
# SQLite study of its own); sudo keeps that one variable for docker, which passes it into the
# container by name (`docker run --env OPTUNA_STORAGE`).
# shellcheck disable=SC2016  # $(sed ...) is for the VM's shell
LOAD_STORAGE='OPTUNA_STORAGE=$(sed -n "s/^OPTUNA_STORAGE=//p" ../'$REMOTE_ENV') && test -n "$OPTUNA_STORAGE" && export OPTUNA_STORAGE'
DOCKER_ENV='DOCKER="sudo --preserve-env=OPTUNA_STORAGE docker"'
# Host and port of the URL (the password stays on the VM): a closed firewall or a wrong host
# shows here in seconds rather than as N failed sweeps.
# shellcheck disable=SC2016  # for the VM's shell
REACH_DB='url=$(sed -n "s/^OPTUNA_STORAGE=//p" '$REMOTE_ENV'); rest=${url#*://}; rest=${rest##*@}; hostport=${rest%%[/?]*}; host=${hostport%:*}; port=${hostport##*:}; [ "$port" != "$hostport" ] || port=5432; [ -z "$host" ] || timeout 10 bash -c "</dev/tcp/$host/$port" 2>/dev/null || { echo "cannot reach the database at $host:$port: open tcp:$port to the VMs network tag (docs/sweeps-cloud.md)" >&2; exit 1; }'

CREATED=()        # VMs a create was started for: cleanup deletes them
RUNNING=()        # background jobs, ended by cleanup
STATUS=()         # STATUS[i]: VM i's exit status in the last each_vm
FETCHED=()        # FETCHED[i]=true once VM i's trial folders are here
PLACED=" "        # the trial folders this run brought here, space-separated
SWEPT=false
FETCH_TRIED=false
DELETED=false

# setup_vm VM: ready to sweep, or 3 when the doctor found problems (its report copied back as
# doctor-VM.txt), 4 when the VM cannot reach the database, 1 for any other failed step.
setup_vm() {
    local vm=$1
    wait_for_gpu "$vm" && check_vm_tools "$vm" &&
        vm_scp "$WORK/repo.tar.gz" "$vm:repo.tar.gz" &&
        vm_ssh "$vm" "mkdir -p $REMOTE_DIR && tar -xzf repo.tar.gz -C $REMOTE_DIR && rm repo.tar.gz && install -d -m 700 .kaggle && install -m 600 /dev/null $REMOTE_ENV" &&
        vm_scp "$CREDENTIALS" "$vm:.kaggle/$(basename "$CREDENTIALS")" &&
        vm_scp "$STORAGE_ENV" "$vm:$REMOTE_ENV" &&
        vm_ssh "$vm" "chmod 600 .kaggle/* $REMOTE_ENV" &&
        vm_ssh "$vm" "cd $REMOTE_DIR && make docker-build DOCKER=\"sudo docker\"" || return 1
    # The doctor in the image just built, before any trial: a VM that cannot train says why.
    if ! vm_ssh "$vm" "cd $REMOTE_DIR && make docker-doctor CONFIG=$DOCTOR_CONFIG DOCKER=\"sudo docker\" >doctor.txt 2>&1; status=\$?; cat doctor.txt; exit \$status"; then
        vm_scp "$vm:$REMOTE_DIR/doctor.txt" "doctor-$vm.txt" ||
            echo "$PROG: could not copy $vm's doctor report back" >&2
        return 3
    fi
    vm_ssh "$vm" "$REACH_DB" || return 4
}

sweep_vm() {   # sweep_vm VM: its workers take trials until the study's budget is spent
    vm_ssh "$1" "cd $REMOTE_DIR && $LOAD_STORAGE && make docker-sweep CONFIG=$CONFIG STUDY=$STUDY $DOCKER_ENV"
}

# Each line of a VM's output, marked with the VM: N of them print at once.
label() {
    local line
    while IFS= read -r line || [[ -n $line ]]; do printf '[%s] %s\n' "$1" "$line"; done
}

# each_vm FUNCTION: FUNCTION VM on all VMs at once and wait for all, STATUS[i] the exit status
# of VM i. A dry run goes one VM after the other, so the printed commands keep their order.
each_vm() {
    local i pids=()
    for ((i = 1; i <= VMS; i++)); do
        STATUS[i]=0
        if $DRY_RUN; then
            "$1" "$(vm_name "$i")" || STATUS[i]=$?
        else
            (set +e; "$1" "$(vm_name "$i")" </dev/null 2>&1 | label "$(vm_name "$i")"
                exit "${PIPESTATUS[0]}") &
            pids[i]=$!
            RUNNING+=($!)
        fi
    done
    $DRY_RUN && return
    for ((i = 1; i <= VMS; i++)); do wait "${pids[i]}" || STATUS[i]=$?; done
    RUNNING=()
}

# fetch_trials VM: the VM's trial folders, unpacked in WORK/VM, then merged into TRIALS.
fetch_trials() {
    local vm=$1
    vm_ssh "$vm" "mkdir -p $REMOTE_DIR/$TRIALS && tar -C $REMOTE_DIR/runs/sweeps/$STUDY -czf trials.tar.gz trials" &&
        vm_scp "$vm:trials.tar.gz" "$WORK/$vm-trials.tar.gz" &&
        run mkdir -p "$WORK/$vm" &&
        run tar -xzf "$WORK/$vm-trials.tar.gz" -C "$WORK/$vm" &&
        merge_trials "$vm"
}

finished() { grep -Eq '"status": *"complete"' "$1/manifest.json" 2>/dev/null; }

# merge_trials VM: each trial folder fetched from VM into TRIALS, where no folder of its name
# is. Trial numbers come from the study, so VMs rarely share one: only a trial handed back
# (SIGTERM) or retried (heartbeat) and restarted on another VM runs under the same name on
# two. Then the finished copy wins over an unfinished one an earlier VM left; a folder that
# was here before this run is never replaced.
merge_trials() {
    local vm=$1 staged name
    if $DRY_RUN; then
        echo "[dry-run] # mv each folder of $WORK/$vm/trials that $TRIALS lacks into it"
        return
    fi
    for staged in "$WORK/$vm/trials"/*/; do
        [[ -d $staged ]] || continue
        staged=${staged%/} && name=${staged##*/}
        if [[ ! -e $TRIALS/$name ]]; then
            mv "$staged" "$TRIALS/$name" || return
            PLACED+=" $name "
        elif [[ $PLACED == *" $name "* ]] && ! finished "$TRIALS/$name" && finished "$staged"; then
            rm -rf "${TRIALS:?}/$name" && mv "$staged" "$TRIALS/$name" || return
            echo "$PROG: $TRIALS/$name: $vm's finished copy replaces an unfinished one" >&2
        fi
    done
}

# fetch_all: every VM's trial folders not yet here. A Spot VM that was preempted is stopped:
# start it again to fetch what it finished (its trials were retried by the others).
fetch_all() {
    local i vm missing=0
    run mkdir -p "$TRIALS"
    for ((i = 1; i <= VMS; i++)); do
        vm=$(vm_name "$i")
        [[ ${FETCHED[i]:-false} == true ]] && continue
        if fetch_trials "$vm" ||
            { $SPOT && echo "$PROG: $vm did not answer; starting it again (preempted?)" >&2 &&
                run "${GCLOUD[@]}" compute instances start "$vm" --zone "$ZONE" --quiet &&
                wait_for_gpu "$vm" && fetch_trials "$vm"; }; then
            FETCHED[i]=true
        else
            echo "$PROG: could not fetch $vm's trial folders" >&2
            missing=$((missing + 1))
        fi
    done
    [[ $missing -eq 0 ]]
}

delete_vms() {
    $DELETED || [[ ${#CREATED[@]} -eq 0 ]] && return
    DELETED=true
    if $KEEP; then
        echo "$PROG: kept ${CREATED[*]}; delete them with: gcloud compute instances delete" \
            "${CREATED[*]} --zone $ZONE" >&2
    else
        run "${GCLOUD[@]}" compute instances delete "${CREATED[@]}" --zone "$ZONE" --quiet ||
            echo "$PROG: could not delete ${CREATED[*]}: delete them by hand, they cost money" >&2
    fi
}

cleanup() {
    local status=$? pid
    trap - EXIT
    trap 'echo "$PROG: interrupted; deleting the VMs next" >&2' INT TERM
    for pid in ${RUNNING[@]+"${RUNNING[@]}"}; do kill "$pid" 2>/dev/null || true; done
    if $SWEPT && ! $FETCH_TRIED && [[ $status -ne 0 ]]; then
        echo "$PROG: ending early; fetching the trial folders the VMs hold" >&2
        (fetch_all) || true
    fi
    trap '' INT TERM   # a second Ctrl-C does not leave N VMs running up costs
    delete_vms
    $DRY_RUN || rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

archive_head "the VMs"
for ((i = 1; i <= VMS; i++)); do
    CREATED+=("$(vm_name "$i")")   # from here on a half-created VM is deleted too
    create_vm "$(vm_name "$i")" --tags "$TAG"
done

each_vm setup_vm
doctor=() failed=()
for ((i = 1; i <= VMS; i++)); do
    case ${STATUS[i]} in
        0) ;;
        3) doctor+=("$(vm_name "$i")") ;;
        4) failed+=("$(vm_name "$i") (cannot reach the database)") ;;
        *) failed+=("$(vm_name "$i")") ;;
    esac
done
[[ ${#doctor[@]} -eq 0 ]] || die "the doctor found problems on ${doctor[*]}" \
    "($(printf 'doctor-%s.txt ' "${doctor[@]}" | sed 's/ $//')); nothing was swept"
[[ ${#failed[@]} -eq 0 ]] || fail "setup failed on ${failed[*]}; nothing was swept"

SWEPT=true
each_vm sweep_vm
bad=()
for ((i = 1; i <= VMS; i++)); do
    [[ ${STATUS[i]} -eq 0 ]] || bad+=("$(vm_name "$i") (exit ${STATUS[i]})")
done
[[ ${#bad[@]} -eq 0 ]] ||
    echo "$PROG: the sweep failed on ${bad[*]}; fetching every VM's trial folders" >&2
FETCH_TRIED=true
fetched=true
fetch_all || fetched=false
delete_vms

# The summary reads the study from the database and the trial folders now all here.
if $DRY_RUN; then
    echo "[dry-run] OPTUNA_STORAGE=\$(sed -n 's/^OPTUNA_STORAGE=//p' $(quote "$SUMMARY_ENV"))" \
        "make sweep-summary STUDY=$STUDY"
elif ! OPTUNA_STORAGE=$(sed -n 's/^OPTUNA_STORAGE=//p' "$SUMMARY_ENV") \
    make sweep-summary "STUDY=$STUDY"; then
    fail "the summary failed; the trial folders are in runs/sweeps/$STUDY: rerun make" \
        "sweep-summary STUDY=$STUDY with OPTUNA_STORAGE set (--summary-env, docs/sweeps-cloud.md)"
fi

if $DRY_RUN; then
    echo "$PROG: dry run: nothing was run" >&2
elif [[ ${#bad[@]} -gt 0 ]] || ! $fetched; then
    fail "the sweep ended with failures (above); the trials that came back are in" \
        "runs/sweeps/$STUDY/trials and the study is complete only if its budget was spent"
else
    echo "$PROG: done; runs/sweeps/$STUDY/summary.md, best run: runs/sweeps/$STUDY/best" >&2
fi
