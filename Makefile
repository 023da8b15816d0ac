# cliptag: the two commands are `make demo` and `make test`; everything else supports them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
SAM_VENV ?= .venv-sam
PY := $(VENV)/bin/python
# torch is pinned to the CPU build this project is developed with; override on your machine
# (e.g. TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cpu").
TORCH_SPEC ?= torch==2.13.0
# open_clip (the OpenCLIP families' export: model_export/openclip.py) without its dependencies: its
# requirements would pull a CUDA torch. torchvision, its match for torch 2.13, goes to a folder of
# its own (.venv/torchvision), found only by model_export.openclip: in site-packages transformers
# would import it everywhere, and PyPI's build of it does not import beside the CPU torch.
TORCHVISION_SPEC ?= torchvision==0.28.0
OPENCLIP_SPEC ?= open_clip_torch==3.3.0 timm==1.0.31 ftfy==6.3.1 wcwidth==0.9.5
# The demo's model: the default (OpenCLIP's DataComp ViT-B-32-256, downloaded on first run; why:
# docs/models.md), any other model_export --model, or MODEL=tiny (offline, random weights).
MODEL ?= open_clip:ViT-B-32-256/datacomp_s34b_b86k
MODEL_DIR ?= build/model-$(subst :,_,$(subst /,_,$(MODEL)))
TEST_MODEL_DIR ?= build/model-tiny
# The bench runs random weights of the default model's real geometry (same compute as the real one).
BENCH_MODEL ?= datacomp-b32-256-random
BENCH_MODEL_DIR ?= build/model-$(BENCH_MODEL)
ARCH ?= x86_64
export SAM_CLI_TELEMETRY = 0

.PHONY: help venv model model-tiny model-bench demo local test test-unit lint typecheck \
        openapi build validate layer-check size deploy bench soak redrive backfill retag failures gallery \
        screenshots clean

help:
	@echo "make demo [MODEL=tiny]   run the whole pipeline locally on sample photos and print the tags"
	@echo "make test                unit + integration tests (local AWS on loopback, real ONNX model)"
	@echo "make local [ARGS=...]    start the local stack until Ctrl-C (writes build/local-stack.json); ARGS=\"--parameter TopK=5\""
	@echo "make redrive             move the local stack's dead letters back to the tagging queue"
	@echo "make backfill [STACK=name] [ARGS=...]  tag what was in the bucket before the stack (cliptag backfill)"
	@echo "make retag [STACK=name] [ARGS=...]     re-tag after a vocabulary/TopK/MinScore change (cliptag retag)"
	@echo "make failures [STACK=name]             list the objects that could not be tagged (cliptag failures)"
	@echo "make gallery [STACK=name] [ARGS=...]   browse tags, search and images on http://127.0.0.1:8080/ (cliptag gallery)"
	@echo "make screenshots         regenerate docs/screenshots/ from the browser tests (headless Chromium)"
	@echo "make model [MODEL=...]   export a model directory (default: DataComp ViT-B-32-256, docs/models.md)"
	@echo "make build [ARCH=arm64]  sam build (layers without Docker); make deploy = sam deploy --guided"
	@echo "make layer-check         build the runtime and text layers and run each function from its own layers"
	@echo "make openapi             write openapi.json"
	@echo "make soak                1,000 uploads with 10% injected faults through the local stack, then an audit"
	@echo "make bench [BENCH_ARGS=] the performance table (the default model's geometry, random weights;"
	@echo "                         BENCH_MODEL=vit-b-32-random for OpenAI's);"
	@echo "                         BENCH_ARGS=\"--only stages,cost\" runs some measures (python -m bench --list)"
	@echo "make lint typecheck      ruff, mypy"
	@echo "make checkov             checkov on template.yaml, offline: no failed check, every skip with a reason"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet "$(TORCH_SPEC)"
	$(VENV)/bin/pip install --quiet -e ".[export,dev]"
	$(VENV)/bin/pip install --quiet --no-deps $(OPENCLIP_SPEC)
	$(VENV)/bin/pip install --quiet --no-deps --target $(VENV)/torchvision $(TORCHVISION_SPEC)
	touch $@

venv: $(VENV)/.installed

$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli cfn-lint
	touch $@

# One rule exports every model directory; each directory's arguments are a target-specific
# variable. The demo's, the tests' and the bench's directories coincide for MODEL=tiny or
# MODEL=$(BENCH_MODEL): a rule per directory would then define one target twice, and make
# would warn and keep the last recipe. Here the last assignment simply wins (same export).
MODEL_EXPORT_ARGS = --model $(MODEL)
$(MODEL_DIR)/manifest.json: MODEL_EXPORT_ARGS = --model $(MODEL)
$(BENCH_MODEL_DIR)/manifest.json: MODEL_EXPORT_ARGS = --model $(BENCH_MODEL)
$(TEST_MODEL_DIR)/manifest.json: MODEL_EXPORT_ARGS = --model tiny --no-progress

# The default vocabulary and its descriptions: editing them re-exports (`make model`).
VOCABULARY_FILES := $(wildcard model_export/vocabulary/*.yaml)
%/manifest.json: $(VOCABULARY_FILES) | venv
	$(PY) -m model_export $(MODEL_EXPORT_ARGS) --out $*

model: $(MODEL_DIR)/manifest.json

model-tiny: $(TEST_MODEL_DIR)/manifest.json

model-bench: $(BENCH_MODEL_DIR)/manifest.json

demo: model
	$(PY) -m devstack demo --model-dir $(MODEL_DIR)

local: model
	$(PY) -m devstack up --model-dir $(MODEL_DIR) $(ARGS)

redrive: venv
	$(PY) -m devstack redrive

# The cliptag command against a deployed stack (STACK=name) or, by default, the local one.
CLIPTAG := $(VENV)/bin/cliptag
STACK_ARGS = $(if $(STACK),--stack $(STACK))

backfill: venv
	$(CLIPTAG) backfill $(STACK_ARGS) $(ARGS)

retag: venv
	$(CLIPTAG) retag $(STACK_ARGS) $(ARGS)

failures: venv
	$(CLIPTAG) failures $(STACK_ARGS) $(ARGS)

gallery: venv
	$(CLIPTAG) gallery $(STACK_ARGS) $(ARGS)

# The browser tests save a PNG of each page where CLIPTAG_SCREENSHOTS points.
screenshots: venv model-tiny
	CLIPTAG_TEST_MODEL_DIR=$(TEST_MODEL_DIR) CLIPTAG_SCREENSHOTS=docs/screenshots $(PY) -m pytest -q tests/browser

test: venv model-tiny
	CLIPTAG_TEST_MODEL_DIR=$(TEST_MODEL_DIR) $(PY) -m pytest -q

test-unit: venv
	$(PY) -m pytest -q tests/unit

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy

openapi: venv
	$(PY) -c "from handlers.api import openapi; open('openapi.json', 'w').write(openapi())"
	@echo "wrote openapi.json"

validate: $(SAM_VENV)/.installed
	$(SAM_VENV)/bin/sam validate --lint
	$(SAM_VENV)/bin/cfn-lint template.yaml

# checkov (IaC scanner) on template.yaml, offline; fails on a failed check or a skip without a reason
# (.ci/checkov_gate.py). Its own venv: checkov pins boto3==1.35.49 (no S3 Vectors), networkx<2.7
# (scikit-image needs >=3) and packaging<24 (pytest needs >=24), so it cannot join .venv.
CHECKOV_VENV ?= build/checkov-venv
CHECKOV_SPEC ?= checkov==3.3.30
.PHONY: checkov
$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet "$(CHECKOV_SPEC)"
	touch $@

checkov: $(CHECKOV_VENV)/.installed
	$(CHECKOV_VENV)/bin/python .ci/checkov_gate.py --checkov $(CHECKOV_VENV)/bin/checkov --template template.yaml

build: $(SAM_VENV)/.installed model
	CLIPTAG_MODEL_DIR=$(abspath $(MODEL_DIR)) CLIPTAG_ARCH=$(ARCH) PIP="$(abspath $(PY)) -m pip" \
	  $(SAM_VENV)/bin/sam build --parameter-overrides Architecture=$(ARCH)
	$(PY) -m model_export.layer_size .aws-sam/build

layer-check: venv model-tiny
	$(PY) layers/check_runtime_layer.py $(TEST_MODEL_DIR)

size: venv
	$(PY) -m model_export.layer_size .aws-sam/build

# The search index's dimension comes from the model being deployed (it cannot change later).
EMBED_DIM = $(shell $(PYTHON) -c 'import json,sys; print(json.load(open(sys.argv[1]))["model"]["embed_dim"])' $(MODEL_DIR)/manifest.json 2>/dev/null)

deploy: build
	$(SAM_VENV)/bin/sam deploy --guided --parameter-overrides Architecture=$(ARCH) EmbeddingDimension=$(EMBED_DIM)

soak: venv model-tiny
	$(PY) -m devstack.soak --model-dir $(TEST_MODEL_DIR)

bench: model-bench
	$(PY) -m bench --model-dir $(BENCH_MODEL_DIR) $(BENCH_ARGS)

clean:
	rm -rf build .aws-sam openapi.json
