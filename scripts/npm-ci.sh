#!/usr/bin/env bash
# npm ci as the project's commands run it (scripts/test.sh, scripts/demo.sh, .ci/run), passing on any arguments.
# onnxruntime-node's install script downloads its CUDA provider (hundreds of MB, from NuGet) on linux/x64 unless told
# to skip, and fails the install where NuGet cannot be reached (this project's CI). It reads the environment variable
# ONNXRUNTIME_NODE_INSTALL first (then npm_config_onnxruntime_node_install): set here, and not as a key in .npmrc,
# which npm 11 warns is an unknown project config that its next major version will stop passing on. A value already
# set wins (ONNXRUNTIME_NODE_INSTALL=cuda12 installs the CUDA provider).
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_NODE_INSTALL=${ONNXRUNTIME_NODE_INSTALL:-skip}
exec npm ci --no-audit --no-fund "$@"
