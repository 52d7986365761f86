# Everything installs itself: `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
PYTHON312 := $(shell ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.12*/bin/python3.12 2>/dev/null | tail -1 || true)
PYTHON312 := $(or $(PYTHON312),$(shell command -v python3.12 2>/dev/null))
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# checkov pins boto3, networkx and packaging versions the project cannot share: its own virtualenv.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
LAYERS := build/layers
DATA ?=
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: demo test bench load cost layers model synth deploy lint clean checkov checkov-venv

$(STAMP): pyproject.toml package.json
	@test -n "$(PYTHON312)" || { echo "Python 3.12 (the Lambda runtime's version) is needed: install python3.12"; exit 1; }
	test -x $(PY) || $(PYTHON312) -m venv $(VENV)
	@# Java 17 for the Spark engine (merchandiser train --engine spark), from Debian's packages
	command -v java >/dev/null || { apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless; }
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	npm install --no-audit --no-fund --silent
	touch $@

demo: $(STAMP)
	$(VENV)/bin/merchandiser demo $(if $(DATA),--data $(DATA))

# The layers are built first: the infrastructure tests measure them and `python app.py` needs them;
# checkov (tests/infra/test_checkov.py) runs from its own virtualenv.
test: layers $(CHECKOV_STAMP)
	$(VENV)/bin/pytest

# Figures, not assertions: learning (Online Retail and the regimes against the tuned anchors, ALS anchors,
# 10M synthetic, the Spark engine), the page's long-tail correction, serving, events, the twin over HTTP,
# exploration over simulated days. BENCH_ARGS=--skip-synthetic leaves out the 10M runs (over an hour on 2
# cores); --regimes none|a,b and --regime-scale S choose the regimes.
bench: layers
	$(PY) -m training.benchmark $(BENCH_ARGS)
	$(PY) -m training.bench_popularity
	$(PY) -m training.bench_spark $(BENCH_ARGS)
	$(PY) -m local_twin.bench_serving
	$(PY) -m local_twin.bench_events
	$(PY) -m local_twin.bench_twin
	$(PY) -m training.bench_position_bias
	$(PY) -m local_twin.bench_exploration

# Shoppers (locust) against the twin for LOAD_SECONDS (60) while DynamoDB throttles, Kinesis refuses records
# and the model loads slowly: requests, failures, p50/p99, 5xx (none expected) and the events' balance.
LOAD_SECONDS ?= 60
load: $(STAMP)
	$(PY) -m local_twin.load --seconds $(LOAD_SECONDS) $(LOAD_ARGS)

# The monthly AWS bill at 1, 10 and 100 recommendation requests/s beside Amazon Personalize's, from dated list
# prices and the bench figures in build/bench/ when present. COST_ARGS=--json also writes build/bench/cost.json.
cost: $(STAMP)
	$(PY) -m local_twin.cost $(COST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy merchandiser lambdas local_twin training stacks layers

# The dependency layer (manylinux wheels for Python 3.12 + libgomp) is built once and reused.
$(LAYERS)/deps/.stamp: $(STAMP) layers/requirements.txt
	$(PY) -m layers.build deps --out $(LAYERS)/deps

# A model trained on DATA (default: the synthetic shop), for trying `merchandiser train` and the bench;
# deployed functions load theirs from S3 (the live-model parameter), no layer holds a model.
CORE_SOURCES := $(shell find merchandiser training -name '*.py')
model: $(STAMP)
	$(if $(DATA),,$(PY) -m training.datasets.synthetic_shop --out build/shop)
	rm -rf build/model
	$(VENV)/bin/merchandiser train --data $(if $(DATA),$(DATA),build/shop) --model-dir build/model --output-dir build/evaluation

$(LAYERS)/core/.built: $(STAMP) $(CORE_SOURCES)
	$(PY) -m layers.build core --out $(LAYERS)/core
	touch $@

layers: $(LAYERS)/deps/.stamp $(LAYERS)/core/.built

synth: layers
	$(PY) app.py

$(CHECKOV_STAMP): checkov-requirements.txt
	@test -n "$(PYTHON312)" || { echo "Python 3.12 is needed: install python3.12"; exit 1; }
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON312) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r checkov-requirements.txt
	touch $@

checkov-venv: $(CHECKOV_STAMP)

# checkov over the synthesized templates: failed checks are fixed in stacks/ or skipped with a reason.
checkov: synth $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/checkov --directory cdk.out --framework cloudformation --compact --skip-download

deploy: layers
	npx cdk deploy --all

clean:
	rm -rf build cdk.out .twin $(CHECKOV_VENV)
