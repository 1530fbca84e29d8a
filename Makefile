# The commands a person types. Each installs what it needs into .venv first.
SHELL := /bin/bash
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

# Lint while building, in one pass: clippy-driver wraps rustc for the workspace's own crates only,
# so the (large) AWS SDK dependencies are compiled once, not once for check and again for test.
CLIPPY := RUSTC_WORKSPACE_WRAPPER="$$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver)" \
	CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"

.PHONY: venv demo test soak lint validate build package deploy invoke logs bench
FUNCTIONS := quarantine-credentials isolate-instance trace-credentials
FN ?= quarantine-credentials
EVENT ?= events/guardduty-iam-user.json
TARGET ?= moto
STACK ?= cordon

$(VENV)/.installed: tests/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

venv: $(VENV)/.installed

## make demo: moto server, a seeded account, the sample events through the Lambda runtime, a report.
demo: venv
	cargo run --quiet -p integration-tests --bin demo

## make test: formatting, clippy -D warnings, unit and integration tests, template lint.
test: venv
	cargo fmt --all --check
	$(CLIPPY) cargo test --workspace --all-targets
	$(MAKE) --no-print-directory lint

## make soak: the reliability suite at ten times its `make test` size (1,000 findings through 30%
## faults, 500 concurrent deliveries, 1,000,000 mutated events), figures printed.
soak: venv
	CORDON_SOAK_SCALE=$${CORDON_SOAK_SCALE:-10} $(CLIPPY) cargo test -p integration-tests --test integration reliability:: -- --nocapture

# checkov, a security team's template scanner, in its own venv (see tests/lint-requirements.txt).
# --skip-download: no calls to its vendor's API; the checks ship in the package.
CHECKOV := $(CURDIR)/.venv-lint/bin/checkov
$(CHECKOV): tests/lint-requirements.txt
	python3 -m venv .venv-lint
	.venv-lint/bin/pip install --quiet --disable-pip-version-check -r tests/lint-requirements.txt
	touch $@

lint: venv $(CHECKOV)
	cfn-lint template.yaml
	$(CHECKOV) --quiet --compact --skip-download --framework cloudformation -f template.yaml

# The AWS SAM CLI is large; only deploy, logs and validate need it.
SAM := $(CURDIR)/.venv-sam/bin/sam
$(SAM):
	python3 -m venv .venv-sam
	.venv-sam/bin/pip install --quiet --disable-pip-version-check aws-sam-cli==1.170.0

## make validate: `sam validate --lint`, offline.
validate: $(SAM)
	SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(SAM) validate --lint --template template.yaml

$(VENV)/.build-tools: $(VENV)/.installed tests/build-requirements.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/build-requirements.txt
	rustup target add aarch64-unknown-linux-gnu
	touch $@

## make build: release arm64 `bootstrap` for each function, under target/lambda/<name>/.
build: $(VENV)/.build-tools
	cargo lambda build --release --arm64 $(addprefix --bin ,$(FUNCTIONS))

## make package: one zip per function, with its size.
package: build
	@for f in $(FUNCTIONS); do \
		(cd target/lambda/$$f && rm -f bootstrap.zip && python3 -m zipfile -c bootstrap.zip bootstrap); \
		printf '%-24s bootstrap %8s bytes   bootstrap.zip %8s bytes\n' $$f \
			$$(stat -c %s target/lambda/$$f/bootstrap) $$(stat -c %s target/lambda/$$f/bootstrap.zip); \
	done

## make deploy: sam deploy (guided the first time, then from samconfig.toml). The first deploy
## offers the deploying principal (sts:GetCallerIdentity) as DeployerArn, which is never quarantined.
## make deploy REGIONS="us-east-1 eu-west-1" PARAMS="DryRun=false AlertEmail=...": one stack per
## region, sharing us-east-1's ledger and topic (tools/deploy_regions.py says how).
REGIONS ?=
PARAMS ?=
deploy: package $(SAM)
	@if [ -n "$(REGIONS)" ]; then .venv-sam/bin/python tools/deploy_regions.py $(SAM) $(STACK) "$(REGIONS)" "$(PARAMS)"; \
	elif [ -f samconfig.toml ]; then $(SAM) deploy; else \
		deployer=$$(.venv-sam/bin/python -c 'import boto3; print(boto3.client("sts").get_caller_identity()["Arn"])') && \
		$(SAM) deploy --guided --stack-name $(STACK) --capabilities CAPABILITY_NAMED_IAM --parameter-overrides DeployerArn=$$deployer; fi

## make invoke FN=... EVENT=...: one event through `cargo lambda watch` + `cargo lambda invoke`,
## against a fresh moto server (TARGET=moto, the default) or your AWS credentials (TARGET=aws).
invoke: venv
	cargo run --quiet -p integration-tests --bin invoke -- $(TARGET) $(FN) $(EVENT)

## make logs FN=...: tail the deployed function's logs (FN=cloudtrail-calls: quarantine-credentials'
## code on CloudTrail calls; FN=trace-credentials).
logs: $(SAM)
	$(SAM) logs --stack-name $(STACK) --name $(if $(filter isolate-instance,$(FN)),IsolateInstanceFunction,$(if $(filter cloudtrail-calls,$(FN)),CloudTrailCallsFunction,$(if $(filter trace-credentials,$(FN)),TraceCredentialsFunction,QuarantineCredentialsFunction))) --tail

## make bench: cold start, time to containment, burst, rule evaluation, a 10,000-event trace -> BENCHMARKS.md
## (`target/release/bench trace` redoes the trace section alone).
## Release x86_64 binaries (this machine runs them); sizes come from `make package` if it ran.
.venv-c7n/bin/custodian:
	python3 -m venv .venv-c7n
	.venv-c7n/bin/pip install --quiet --disable-pip-version-check c7n==0.9.53

bench: venv .venv-c7n/bin/custodian
	cargo build --release $(addprefix --bin ,$(FUNCTIONS)) --bin bench
	target/release/bench
