#!/bin/sh
# Configures and builds qparity into ./build (incremental). Extra arguments go to cmake.
set -eu
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j"$(nproc)"
