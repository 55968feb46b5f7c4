# Kaggle digit-recognizer job. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CONFIG ?= configs/default.yaml
RUNS ?= runs
STAMP := $(VENV)/.installed
# SkyPilot lives in a venv of its own: its pins (click < 8.2, ...) do not fit the job's.
# SKY_CLOUDS adds its extras for the clouds you use, e.g. SKY_CLOUDS=gcp,aws.
SKY_VENV ?= .sky-venv
SKY_CLOUDS ?=
comma := ,
SKY_STAMP := $(SKY_VENV)/.installed$(if $(SKY_CLOUDS),-$(subst $(comma),-,$(SKY_CLOUDS)))

.DEFAULT_GOAL := help
.PHONY: help venv train download submit kaggle-run test test-all bench tensorboard runs lint doctor \
	gpu-acceptance sweep sweep-summary sweep-dashboard

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP) ## create .venv from the pinned requirements (done by the targets that need it)

train: $(STAMP) ## train all models with CONFIG (default configs/default.yaml); RESUME=runs/<id> continues one
	$(PY) -m job train $(if $(RESUME),--resume $(RESUME),--config $(CONFIG))

download: $(STAMP) ## download the competition data (CONFIG's data.dir); FORCE=1 refreshes it
	$(PY) -m job download --config $(CONFIG) $(if $(FORCE),--force)

submit: $(STAMP) ## submit RUN (default runs/latest) to Kaggle; ARGS="--dry-run|--wait|--force|--message M"
	$(PY) -m job submit --runs-dir $(RUNS) $(if $(RUN),--run $(RUN)) $(ARGS)

kaggle-run: $(STAMP) ## train CONFIG on Kaggle's GPUs (ACCELERATOR=t4x2|p100|none), bring the run home; FOLLOW=OWNER/SLUG picks up a pushed one; ARGS="--no-wait|--set K=V"
	$(PY) -m job kaggle-run $(if $(FOLLOW),--follow $(FOLLOW),--config $(CONFIG) $(if $(ACCELERATOR),--accelerator $(ACCELERATOR))) --runs-dir $(RUNS) $(ARGS)

test: $(STAMP) $(SKY_STAMP) ## run the test suite CI runs (slow tests excluded), in two processes
	$(PY) -m pytest -m "not slow" -q -n 2 --dist loadfile --durations=20

test-all: $(STAMP) $(SKY_STAMP) ## run every test, slow ones included
	$(PY) -m pytest -q

bench: $(STAMP) ## measure ingest, s/epoch per style, peak memory; then time to accuracy (fast, default, leaderboard vs keras-io)
	$(PY) scripts/bench.py --out bench.json
	$(PY) scripts/time_to_accuracy.py --out tta.json

tensorboard: $(STAMP) ## show training curves of every run: tensorboard --logdir runs
	$(VENV)/bin/tensorboard --logdir $(RUNS)

runs: $(STAMP) ## list runs with their data source, best model and val accuracy
	$(PY) -m job runs --runs-dir $(RUNS)

doctor: $(STAMP) ## check this machine can run CONFIG: driver, GPUs, CUDA libraries, timed steps
	$(PY) -m job doctor --config $(CONFIG)

# --- sweeps (python -m job sweep; docs/sweeps.md) ---------------------------------------------
# make sweep runs configs/sweep.yaml unless CONFIG is given (`make train` keeps default.yaml).
SWEEP_CONFIG ?= $(if $(filter file,$(origin CONFIG)),configs/sweep.yaml,$(CONFIG))
WORKERS ?= 1
PORT ?= 8080
NEED_STUDY = @test -n "$(STUDY)" || { echo "make $@: set STUDY=<study name> (a folder under $(RUNS)/sweeps/)" >&2; exit 2; }

sweep: $(STAMP) ## sweep CONFIG (default configs/sweep.yaml) with WORKERS processes; STUDY=, ARGS="--set K=V"; storage: env OPTUNA_STORAGE or SQLite
	$(PY) -m job sweep --config $(SWEEP_CONFIG) --workers $(WORKERS) $(if $(STUDY),--study $(STUDY)) $(ARGS)

sweep-summary: $(STAMP) ## rewrite runs/sweeps/STUDY's summary and best link from the storage and the folders here
	$(NEED_STUDY)
	$(PY) -m job sweep-summary $(RUNS)/sweeps/$(STUDY)

sweep-dashboard: $(STAMP) ## optuna-dashboard for STUDY on http://127.0.0.1:PORT (default 8080)
	$(NEED_STUDY)
	$(PY) -m job dashboard --study $(STUDY) --runs-dir $(RUNS) --port $(PORT)

gpu-acceptance: ## on a GPU machine: image, doctor, 2 epochs per model, one table; ARGS=--no-docker
	scripts/gpu_acceptance.sh $(ARGS)

# --- the GPU image (docker/Dockerfile) -------------------------------------------------------
# DOCKER="sudo docker" where the user is not in the docker group (sky/remote.sh does).
DOCKER ?= docker
IMAGE ?= digit-job
TF_VERSION := $(shell sed -n 's/^tensorflow==//p' requirements.txt)
DATA ?= data
# docker-train runs configs/gpu.yaml unless CONFIG is given (`make train` keeps default.yaml).
# (Not DOCKER_CONFIG: the docker client reads that variable as its own settings folder.)
DOCKER_TRAIN_CONFIG ?= $(if $(filter file,$(origin CONFIG)),configs/gpu.yaml,$(CONFIG))
# Kaggle credentials: this folder is mounted read-only if it exists; the variables are passed
# by name only, so their values never appear on a command line.
KAGGLE_DIR ?= $(or $(KAGGLE_CONFIG_DIR),$(HOME)/.kaggle)
DOCKER_RUN = $(DOCKER) run --rm --user "$$(id -u):$$(id -g)" -v "$(abspath $(RUNS)):/app/runs" \
	$(if $(wildcard $(KAGGLE_DIR)),-v "$(abspath $(KAGGLE_DIR)):/home/app/.kaggle:ro") \
	-e KAGGLE_USERNAME -e KAGGLE_KEY -e KAGGLE_API_TOKEN
.PHONY: docker-build docker-train docker-submit docker-doctor docker-sweep

docker-build: ## build the GPU image digit-job:<tensorflow pin> and :latest
	$(DOCKER) build -f docker/Dockerfile --build-arg TF_VERSION=$(TF_VERSION) -t $(IMAGE):$(TF_VERSION) -t $(IMAGE):latest .

docker-train: ## train CONFIG (default configs/gpu.yaml) in the image on all GPUs; runs/, data/ on the host; RESUME=runs/<id> continues one
	@mkdir -p "$(DATA)" "$(RUNS)"
	$(DOCKER_RUN) --gpus all -v "$(abspath $(DATA)):/app/data" -v "$(CURDIR)/configs:/app/configs:ro" \
		$(IMAGE):$(TF_VERSION) train $(if $(RESUME),--resume $(RESUME),--config $(DOCKER_TRAIN_CONFIG))

docker-sweep: ## sweep CONFIG (default configs/sweep.yaml) in the image, one worker per GPU; env OPTUNA_STORAGE passed by name
	@mkdir -p "$(DATA)" "$(RUNS)"
	$(DOCKER_RUN) --gpus all -e OPTUNA_STORAGE -v "$(abspath $(DATA)):/app/data" \
		-v "$(CURDIR)/configs:/app/configs:ro" $(IMAGE):$(TF_VERSION) sweep --config $(SWEEP_CONFIG) \
		--workers "$$(n=$$(nvidia-smi -L 2>/dev/null | grep -c '^GPU'); echo $$((n > 0 ? n : 1)))" \
		$(if $(STUDY),--study $(STUDY)) $(ARGS)

docker-doctor: ## run the doctor in the image on all GPUs, for CONFIG (default configs/gpu.yaml)
	$(DOCKER) run --rm --gpus all -v "$(CURDIR)/configs:/app/configs:ro" \
		$(IMAGE):$(TF_VERSION) doctor --config $(DOCKER_TRAIN_CONFIG)

docker-submit: ## submit RUN (default runs/latest) from the image, no Python needed; ARGS as for submit
	$(DOCKER_RUN) $(IMAGE):$(TF_VERSION) submit --runs-dir runs $(if $(RUN),--run $(RUN)) $(ARGS)

lint: $(STAMP) ## hadolint docker/Dockerfile; shellcheck scripts/*.sh, sky/*.sh and .ci/run
	$(VENV)/bin/hadolint docker/Dockerfile && $(VENV)/bin/shellcheck scripts/*.sh sky/*.sh .ci/run

# --- cloud GPUs through SkyPilot (sky/; docker/README.md, docs/sweeps-cloud.md) -------------
# (SKY_VENV, SKY_CLOUDS, SKY_STAMP: at the top, since make test needs SkyPilot too.)
SKYPILOT := skypilot$(if $(SKY_CLOUDS),[$(SKY_CLOUDS)])==$(shell sed -n 's/^skypilot==//p' sky/requirements.txt)
BUCKET ?= $(SKY_BUCKET)
JOBS ?= 1
SKY_LAUNCH = $(PY) sky/launch.py
SKY_COMMON = $(if $(BUCKET),--bucket $(BUCKET)) $(if $(GPUS),--gpus $(GPUS)) \
	$(if $(ON_DEMAND),--on-demand) $(ARGS)
.PHONY: sky-venv sky-train sky-sweep sky-status sky-logs sky-down

$(SKY_STAMP): sky/requirements.txt sky/constraints.txt
	test -x $(SKY_VENV)/bin/python || $(PYTHON) -m venv $(SKY_VENV)
	$(SKY_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SKY_VENV)/bin/python -m pip install --quiet "$(SKYPILOT)" -c sky/constraints.txt
	touch $@

sky-venv: $(SKY_STAMP) ## install SkyPilot (sky/requirements.txt) into .sky-venv; SKY_CLOUDS=gcp,aws,... adds clouds

sky-train: $(STAMP) $(SKY_STAMP) ## train CONFIG (default configs/gpu.yaml) on a Spot GPU in BUCKET; recovered runs resume; ARGS="--submit|--dry-run|--yes"
	$(SKY_LAUNCH) train --config $(DOCKER_TRAIN_CONFIG) $(SKY_COMMON)

sky-sweep: $(STAMP) $(SKY_STAMP) ## sweep CONFIG (default configs/sweep.yaml) with JOBS Spot GPUs on one study; env OPTUNA_STORAGE
	$(SKY_LAUNCH) sweep --config $(SWEEP_CONFIG) --jobs $(JOBS) $(if $(STUDY),--study $(STUDY)) $(SKY_COMMON)

sky-status: $(SKY_STAMP) ## SkyPilot's managed jobs: status, recoveries, durations
	$(SKY_VENV)/bin/sky jobs queue

sky-logs: $(SKY_STAMP) ## follow the log of managed job NAME (default: the newest)
	$(SKY_VENV)/bin/sky jobs logs $(if $(NAME),--name $(NAME))

sky-down: $(SKY_STAMP) ## cancel the managed jobs NAME (see make sky-status), uploads finished first
	@test -n "$(NAME)" || { echo "make $@: set NAME=<job name> (make sky-status lists them)" >&2; exit 2; }
	$(SKY_VENV)/bin/sky jobs cancel --name $(NAME) --graceful
