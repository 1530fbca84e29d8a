# The commands a person types. Each installs what it needs into .venv first.
SHELL := /bin/bash
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

# Lint while building, in one pass: clippy-driver wraps rustc for the workspace's own crates only,
# so the (large) AWS SDK dependencies are compiled once, not once for check and again for test.
CLIPPY := RUSTC_WORKSPACE_WRAPPER="$$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver)" \
	CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"

.PHONY: venv demo test lint

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

lint: venv
	cfn-lint template.yaml
