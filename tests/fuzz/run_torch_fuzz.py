#!/usr/bin/env python3
"""Runs the TorchScript fuzz targets (qparity_fuzz_torch) on mutated copies of the small
convnet_basic model and its inputs, found in (or generated into) the test-model cache the model
CLI tests share (tests/cli/model_fixtures.py). Extra arguments go to the driver, e.g. --runs 40."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
import model_fixtures  # noqa: E402


def main():
    if len(sys.argv) < 2:
        raise SystemExit("usage: run_torch_fuzz.py QPARITY_FUZZ_TORCH [driver arguments]")
    files = model_fixtures.model_files(model_fixtures.models_root(), "convnet_basic")
    folder = os.path.dirname(files["qat.pt"])
    return subprocess.run([sys.argv[1], "--models", folder] + sys.argv[2:]).returncode


if __name__ == "__main__":
    sys.exit(main())
