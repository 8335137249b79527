#!/bin/sh
# parity.fbgemm_kernels: builds the real FBGEMM 0d98c26 once per machine (cached outside the
# checkout by the oracle's own build.sh, ~10 min the first time), compiles the parity harness
# against it and qparity's library, and runs the harness on every FBGEMM ISA class this CPU can
# execute: its own, then each lower one forced with FBGEMM_ENABLE_INSTRUCTIONS. Higher classes
# are reported as skipped.
#   run_fbgemm_parity.sh ORACLE_DIR QPARITY_LIB QPARITY_INCLUDE HARNESS_CPP WORK_DIR CXX
set -eu
oracle=$1 lib=$2 include=$3 harness=$4 work=$5 cxx=$6
if [ ! -f "$oracle/build.sh" ]; then
  # Exit 77: CTest reports the test as skipped (SKIP_RETURN_CODE), visibly, not as passed.
  echo "SKIPPED: FBGEMM oracle not found at $oracle (expected ../shared/oracles/fbgemm beside the" \
    "checkout; set QPARITY_FBGEMM_ORACLE_DIR)" >&2
  exit 77
fi
prefix=$(sh "$oracle/build.sh" | tail -n 1)
echo "FBGEMM 0d98c26 at $prefix"
mkdir -p "$work"
bin=$work/fbgemm_kernel_parity
# The project's warning set (CMakeLists.txt qparity_warnings); -isystem: FBGEMM's headers are
# not ours to warn about. No flag here changes FBGEMM's numerics
# (they are in its static library); qparity's library carries its own.
"$cxx" -std=c++20 -O2 -ffp-contract=off -Wall -Wextra -Wpedantic -Wshadow -Wconversion \
  -Wsign-conversion -Wold-style-cast -Wno-missing-field-initializers -Wno-restrict -Werror -isystem "$prefix/include" \
  -I "$include" "$harness" "$lib" "$prefix/lib/libfbgemm.a" "$prefix/lib/libasmjit.a" \
  "$prefix/lib/libcpuinfo.a" "$prefix/lib/libclog.a" -fopenmp -lpthread -ldl -lrt -o "$bin"
# FBGEMM threads its kernels with OpenMP only when asked; one thread keeps runs reproducible.
export OMP_NUM_THREADS=1
status=0
flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
has() { case " $flags " in *" $1 "*) return 0 ;; esac; return 1; }
run() {
  echo "== FBGEMM_ENABLE_INSTRUCTIONS=${1:-(unset: the CPU's own class)}"
  if [ -n "$1" ]; then FBGEMM_ENABLE_INSTRUCTIONS=$1 "$bin" || status=1; else "$bin" || status=1; fi
}
run ""
if has avx512_vnni; then
  run AVX512
  run AVX2
elif has avx512f && has avx512bw && has avx512dq && has avx512vl; then
  echo "== avx512_vnni: skipped, this CPU has no AVX512-VNNI"
  run AVX2
else
  echo "== avx512 and avx512_vnni: skipped, this CPU has no AVX-512 (F, BW, DQ, VL)"
fi
exit $status
