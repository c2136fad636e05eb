# steward: build, demo, test and measure on a fresh machine.
#
#   make demo    build the functions, start the local AWS, drive real-shaped events
#   make test    everything needed, then the whole test suite
#   make lint    the templates (cfn-lint, sam validate --lint, checkov), rustfmt and clippy, warnings are errors
#   make package sam build of the hub template (cargo-lambda, release, x86_64): what `sam deploy` uploads
#   make sync-template  rewrite the policy parameter and the alarms in infra/template.yaml
#   make release release bootstrap.zip of every function and of the hello-world baseline (cargo lambda, x86_64)
#   make coldstart  cold start of every release function next to a hello-world Rust Lambda
#   make bench   every function's figures (size, cold start, memory, AWS calls), the scheduler
#                sweep against Cloud Custodian and the organization-scale sweep (release build;
#                not part of make test)
#   make fuzz    the property tests of the policy, trigger and event parsers with many more cases
#   make faults  every function's main scenario with 30% injected AWS faults (also part of make test)

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

## The functions and, built the same way as the cold-start baseline, tests/hello-lambda.
## cargo lambda writes to $(TARGET_DIR)/lambda/<name>/.
release: venv
	cargo lambda build --release --x86-64 --output-format zip $(addprefix -p ,$(FUNCTIONS)) -p hello-lambda
	@for f in $(FUNCTIONS) hello-lambda; do \
		$(PYTHON) -m zipfile -e $(TARGET_DIR)/lambda/$$f/bootstrap.zip $(TARGET_DIR)/lambda/$$f/ && \
		chmod +x $(TARGET_DIR)/lambda/$$f/bootstrap && ls -l $(TARGET_DIR)/lambda/$$f/bootstrap.zip; done

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

## Cold start of every release function, process start to its first Runtime
## API poll (median of 21 starts), next to the hello-world Rust Lambda.
coldstart: venv release build
	STEWARD_BIN_DIR=$(TARGET_DIR)/lambda $(TARGET_DIR)/debug/steward-coldstart 21

## Every function: release bootstrap.zip, cold start next to hello-world
## (steward-coldstart), peak memory and AWS calls of a representative
## invocation against the minimum (steward-profile); the scheduler sweep over
## 5,000 instances side by side with Cloud Custodian (steward-bench); the
## organization-scale sweep with 50 ms per AWS call (steward-scale). The
## measured processes are the release functions; the drivers need no optimizing.
bench: venv c7n-venv release build
	STEWARD_BIN_DIR=$(TARGET_DIR)/lambda $(TARGET_DIR)/debug/steward-coldstart 21
	STEWARD_BIN_DIR=$(TARGET_DIR)/lambda $(TARGET_DIR)/debug/steward-profile
	STEWARD_BIN_DIR=$(TARGET_DIR)/lambda $(TARGET_DIR)/debug/steward-bench
	STEWARD_BIN_DIR=$(TARGET_DIR)/lambda $(TARGET_DIR)/debug/steward-scale

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
