#!/bin/sh
# Every test on a fresh Debian 12 machine: install, build, run the whole CTest suite
# (unit tests, CLI tests, install/consumer test, parity against real PyTorch 1.13.1).
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh --tests
sh scripts/build.sh -DQPARITY_BUILD_TESTS=ON
cd build
ctest --output-on-failure -j"$(nproc)" "$@"
