#!/bin/sh
# Installs the Debian 12 packages qparity needs. Idempotent: does nothing when all are present.
#   scripts/install-deps.sh          build and run the CLI
#   scripts/install-deps.sh --tests  also what the test suites need (real PyTorch 1.13.1 oracles)
#   scripts/install-deps.sh --bench  also what the benchmarks need
set -eu
packages="g++ cmake make libcli11-dev nlohmann-json3-dev libfmt-dev libtorch-dev"
for arg in "$@"; do
  case "$arg" in
    --tests) packages="$packages libgtest-dev libgmock-dev python3 python3-numpy python3-torch python3-torchvision libtorch-dev python3-jsonschema chromium chromium-driver python3-selenium fonts-dejavu-core" ;;
    --bench) packages="$packages libbenchmark-dev python3 python3-numpy python3-torch hyperfine time" ;;
    *) echo "install-deps.sh: unknown option '$arg' (use --tests or --bench)" >&2; exit 2 ;;
  esac
done
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: missing packages:$missing; run as root (or install them) first" >&2
  exit 2
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
