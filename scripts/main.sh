#!/bin/sh
# The main job on a fresh Debian 12 machine: install, build, run the seed experiment.
# Exit 0 when qparity ran (whether or not the paths agree; its own exit code is printed),
# non-zero when set-up, the build or the run failed.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
sh scripts/build.sh -DQPARITY_BUILD_TESTS=OFF
status=0
./build/qparity "$@" || status=$?
echo "qparity exit code: $status (0 = paths agree, 1 = bins diverge, 2 = error)"
[ "$status" -le 1 ]
