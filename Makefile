# wattprint — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# sam validate/build make no AWS call, but botocore wants a region and credentials to exist.
SAM_ENV := AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline \
           SAM_CLI_TELEMETRY=0 PATH="$(CURDIR)/$(VENV)/bin:$$PATH"

.PHONY: run demo test bench nilm-report lint build check token fresh-check clean

$(STAMP): requirements-dev.txt layers/core/requirements.txt layers/sklearn/requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "wattprint needs Python 3.11 or newer (set PYTHON=...)")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

## Start the local stack on http://127.0.0.1:3000 (embedded PostgreSQL, moto SQS, template.yaml's routes).
run: $(STAMP)
	$(PY) -m local

## Synthetic households streamed to the local stack (the one `make run` started, else its own): make demo RATE=50
RATE ?= 25
demo: $(STAMP)
	$(PY) -m local.demo --rate $(RATE) $(DEMO_ARGS)

## The whole test suite, real PostgreSQL included (embedded, or DATABASE_URL when set).
test: $(STAMP)
	$(PY) -m pytest -q

## Benchmarks; writes BENCHMARKS.md.
bench: $(STAMP)
	$(PY) -m pip install --quiet --only-binary=:all: -r bench/requirements.txt \
	  || echo "bench: awslambdaric could not be installed (Linux wheels only); the cold import is measured without the Lambda runtime's own imports"
	$(PY) -m bench

## The NILM evaluation report with pictures (docs/nilm/): accuracy, macro-F1, states over time, confusion matrices.
nilm-report: $(STAMP)
	$(PY) -m bench.nilm_report

## sam validate --lint (cfn-lint) on template.yaml.
lint: $(STAMP)
	$(SAM_ENV) $(VENV)/bin/sam validate --lint

## sam build (no Docker: makefile builds cross-install arm64 wheels), then the 240 MB size check.
build: $(STAMP)
	$(SAM_ENV) $(VENV)/bin/sam build
	$(PY) tools/check_build_size.py --limit-mb 240

## What CI runs after `make test`.
check: lint build

## Create a token on the running local stack's database: make token SCOPE=ingest NAME=sensor-1
token: $(STAMP)
	$(PY) -m local.admin create_token --scope $(SCOPE) --name $(NAME)

## make run from fresh clones of HEAD, as root and as an ordinary OS user it creates (needs no venv; CI runs it).
## FRESH_ARGS: e.g. --make-test user (also make test in that clone), --as root, --keep
fresh-check:
	$(PYTHON) tools/fresh_clone_check.py $(FRESH_ARGS)

clean:
	rm -rf .aws-sam .pytest_cache
