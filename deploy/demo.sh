#!/usr/bin/env bash
# What `make demo` runs. While the services are being built, the demo shows
# the shared tensor layer on this machine: BLAS, safetensors and the codecs.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(swift build -c release --show-bin-path)
"$bin/hivemind-bench" tensors
