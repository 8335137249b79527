#!/bin/sh
# Every test on a fresh Debian 12 machine: install, build, run the whole CTest suite
# (unit tests, CLI tests, install/consumer test, parity against real PyTorch 1.13.1).
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh --tests
sh scripts/build.sh -DQPARITY_BUILD_TESTS=ON
(cd build && ctest --output-on-failure -j"$(nproc)" "$@")
# The same unit and CLI tests once more under AddressSanitizer + UndefinedBehaviorSanitizer
# (not the model CLI: qparity-model links libtorch, which is not built with the sanitizers), with
# the fuzz targets that need no libtorch. This build also forces the baseline clone of the
# multiversioned kernels (QPARITY_FORCE_BASELINE): on an AVX2 machine the first build tests the
# AVX2 clone, this one the code a CPU without AVX2 runs, with no third build
# (SpanKernels.RunTheCloneTheBuildAsksFor checks which clone runs).
cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQPARITY_SANITIZE=ON \
  -DQPARITY_FORCE_BASELINE=ON -DQPARITY_BUILD_TESTS=ON >/dev/null
cmake --build build-sanitize -j"$(nproc)" --target qparity_unit_tests qparity_cli qparity_fuzz
(cd build-sanitize && ctest --output-on-failure -j"$(nproc)" -R '^(Float32|Quantize|Dequantize|FakeQuant|QParam|Conv2d|Requantize|BackendProfile|Seed|Diagnosis|Fixes|Trace|SpanKernels|AtenLoop|QuantizedScalarOps|AdoptLayerNames|ConvertEager|Compare|OrderSensitiveBins|RunWorkspace|ModelDiagnosis|ModelElementTrace|MemoryEstimate|Meminfo|ProcCgroup|CgroupLimit|CheckFits|FuzzDriver|NpyErrors|BudgetErrors|fuzz\.(numbers|options|budgets|memory|npy)|cli\.behaviour|cli\.sweep)' )
