# steward: build, demo, test and measure on a fresh machine.
#
#   make demo    build the functions, start the local AWS, drive real-shaped events
#   make test    everything needed, then the whole test suite
#   make lint    the templates (cfn-lint, sam validate --lint, checkov), rustfmt and clippy, warnings are errors
#   make package sam build of the hub template (cargo-lambda, release, x86_64): what `sam deploy` uploads
#   make sync-template  rewrite the policy parameter and the alarms in infra/template.yaml
#   make release release bootstrap.zip of every function (cargo lambda, x86_64)
#   make coldstart  cold start of the release tag-enforcer
#   make bench   the scheduler benchmark against Cloud Custodian (release build; not part of make test)
#   make fuzz    the property tests of the policy, trigger and event parsers with many more cases

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
C7N_VENV := .venv-c7n
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
FUNCTIONS := tag-enforcer offhours-scheduler secret-rotator guardduty-responder compliance-notifier budget-alerter snapshot-copier
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: demo test build lint release package sync-template bench coldstart venv c7n-venv sam-venv checkov-venv postgres clean-venv

## The local stack's tools: moto (the AWS emulator) and cargo-lambda, pinned.
venv: $(VENV)/.installed
$(VENV)/.installed: tools/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt
	touch $@

## Cloud Custodian in its own virtualenv (it pins boto3): schedule agreement test and benchmark.
c7n-venv: $(C7N_VENV)/.installed
$(C7N_VENV)/.installed: tools/c7n-requirements.txt
	$(PYTHON) -m venv $(C7N_VENV)
	$(C7N_VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/c7n-requirements.txt
	touch $@

## The template tools, each in its own virtualenv (both pin boto3, differently).
sam-venv: $(SAM_VENV)/.installed
$(SAM_VENV)/.installed: tools/sam-requirements.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/sam-requirements.txt
	touch $@

checkov-venv: $(CHECKOV_VENV)/.installed
$(CHECKOV_VENV)/.installed: tools/checkov-requirements.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/checkov-requirements.txt
	touch $@

## PostgreSQL server binaries for the rotation tests (Debian's packages, when missing).
postgres:
	bash tools/install-postgres.sh

build:
	cargo build --workspace --bins

test: venv c7n-venv postgres build
	cargo test --workspace --no-fail-fast

# The drivers run as built by `build`: `cargo run -p` alone would resolve the
# SDK crates' features for one package and compile them a second time.
demo: venv postgres build
	$(TARGET_DIR)/debug/steward-demo

lint: venv sam-venv checkov-venv
	cfn-lint infra/*.yaml
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam validate --lint --region us-east-1 --template infra/template.yaml
	$(CHECKOV_VENV)/bin/checkov --config-file infra/.checkov.yaml -d infra
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

release: venv
	cargo lambda build --release --x86-64 --output-format zip $(addprefix -p ,$(FUNCTIONS))
	@for f in $(FUNCTIONS); do \
		$(PYTHON) -m zipfile -e target/lambda/$$f/bootstrap.zip target/lambda/$$f/ && \
		chmod +x target/lambda/$$f/bootstrap && ls -l target/lambda/$$f/bootstrap.zip; done

## What `sam deploy` uploads: every function built by sam's cargo-lambda
## build method (a preview feature), release, for the template's architecture
## (x86_64 here; arm64 is accepted by the template but not built here).
package: venv sam-venv
	SAM_CLI_TELEMETRY=0 SAM_CLI_BETA_RUST_CARGO_LAMBDA=1 $(SAM_VENV)/bin/sam build \
		--template infra/template.yaml --build-dir .aws-sam/build --beta-features

## The generated parts of the hub template: the policy parameter (from
## infra/policy.example.toml) and one Errors and one Throttles alarm per function.
sync-template:
	$(PYTHON) tools/sync_template.py $(FUNCTIONS)

## Cold start of the release tag-enforcer: process start to its first Runtime API poll.
coldstart: venv release build
	STEWARD_BIN_DIR=target/lambda $(TARGET_DIR)/debug/steward-coldstart tag-enforcer 30

## The scheduler sweep over 5,000 instances, side by side with Cloud Custodian.
## The measured process is the release scheduler; the driver itself needs no optimizing.
bench: venv c7n-venv release build
	$(TARGET_DIR)/debug/steward-bench

clean-venv:
	rm -rf $(VENV) $(C7N_VENV) $(SAM_VENV) $(CHECKOV_VENV)

## Longer property-test runs of the parsers (the policy and its locator, the
## shared scheduled-trigger and SQS-batch parsers, the schedule tags): the
## tests `make test` runs with 256 cases each, here with PROPTEST_CASES
## (default 20000). Every crash found becomes a regression test.
## Then every function's own event parsers (`tests/parser_properties.rs` of
## each function crate; 64 cases each in `make test`), with PROPTEST_CASES
## (default 5000) cases each; built as `make test` builds, so nothing compiles again.
.PHONY: fuzz
fuzz:
	PROPTEST_CASES=$${PROPTEST_CASES:-20000} cargo test -p steward-shared --lib fuzz
	PROPTEST_CASES=$${PROPTEST_CASES:-5000} cargo test --workspace --test parser_properties

## Every function's main scenario with 30% injected AWS faults (issue 11).
.PHONY: faults
faults: venv postgres build
	cargo test --workspace --test faults
