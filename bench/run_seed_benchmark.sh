#!/bin/sh
# Whole-process wall time and peak memory of `qparity` (the seed experiment) against the same
# experiment run in Python with real PyTorch 1.13.1 (bench/seed_experiment.py), same machine.
#
#   sh bench/run_seed_benchmark.sh [-o DIR] [-r MIN_RUNS] [-m MEM_RUNS] [QPARITY_BINARY]
#
#   QPARITY_BINARY  the binary to measure (default: build/qparity; build it with scripts/build.sh)
#   -o DIR          results directory (default: bench/results-YYYYMMDD; git-ignored)
#   -r MIN_RUNS     hyperfine --min-runs for every command (default 10; the fast commands run for
#                   at least hyperfine's 3 s budget anyway, so they get hundreds of runs)
#   -m MEM_RUNS     runs per command under /usr/bin/time -f %M; the maximum is reported (default 3)
#
# Needs hyperfine, GNU time (/usr/bin/time) and Debian's /usr/bin/python3 with python3-torch:
#   sh scripts/install-deps.sh --bench
# It builds and installs nothing itself.
#
# Targets: (diagnosis issue) `qparity` with diagnosis and fix verification within 2x of
# `qparity --no-diagnosis`; (issue "qparity core"): qparity >= 100x faster than the Python run (mean wall time) and
# <= 1/5 of its peak RSS. Exit status: 0 all targets met, 1 a target missed, 2 setup error.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3          # Debian's interpreter: the only one that has torch here
SEED_PY="$ROOT/bench/seed_experiment.py"
OUT=""
MIN_RUNS=10
MEM_RUNS=3
TIME_TARGET=100              # python_time / qparity_time must be >= this
MEM_TARGET=0.2               # qparity_rss / python_rss must be <= this

usage() { sed -n '5,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
die() { echo "run_seed_benchmark.sh: $*" >&2; exit 2; }

while getopts o:r:m:h opt; do
  case "$opt" in
    o) OUT=$OPTARG ;;
    r) MIN_RUNS=$OPTARG ;;
    m) MEM_RUNS=$OPTARG ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -le 1 ] || usage
QP=${1:-"$ROOT/build/qparity"}
[ -n "$OUT" ] || OUT="$ROOT/bench/results-$(date +%Y%m%d)"

# ---- preflight: every tool present, both sides really run the experiment -----------------------
command -v hyperfine >/dev/null 2>&1 || die "hyperfine not found; run: sh scripts/install-deps.sh --bench"
[ -x /usr/bin/time ] || die "GNU time (/usr/bin/time) not found; run: sh scripts/install-deps.sh --bench"
[ -x "$PY" ] || die "$PY not found; run: sh scripts/install-deps.sh --bench"
[ -x "$QP" ] || die "no qparity binary at $QP; build it with: sh scripts/build.sh"
case "$QP" in *[[:space:]]*) die "the qparity path must not contain spaces (hyperfine -N splits on them)" ;; esac
case "$SEED_PY" in *[[:space:]]*) die "the checkout path must not contain spaces (hyperfine -N splits on them)" ;; esac
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# hyperfine must ignore exit codes (qparity exits 1 when the bins diverge, the expected outcome),
# so check up front that every command does the real work and exits as expected.
ENGINES="qnnpack onednn"
rc=0; "$QP" >"$OUT/qparity-defaults.out" 2>&1 || rc=$?
[ "$rc" -le 1 ] || die "'$QP' exited $rc (see $OUT/qparity-defaults.out)"
grep -q "RESULT:" "$OUT/qparity-defaults.out" || die "'$QP' printed no RESULT line"
for e in $ENGINES; do
  rc=0; "$QP" seed --backend "$e" >"$OUT/qparity-$e.out" 2>&1 || rc=$?
  [ "$rc" -le 1 ] || die "'$QP seed --backend $e' exited $rc (see $OUT/qparity-$e.out)"
  "$PY" "$SEED_PY" --backend "$e" >"$OUT/python-$e.out" 2>&1 \
    || die "the Python seed run failed for $e (see $OUT/python-$e.out)"
  grep -q "first nonzero error" "$OUT/python-$e.out" || die "the Python seed run printed no result for $e"
done

# ---- environment ------------------------------------------------------------------------------
{
  echo "date:      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host cpu:  $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)" \
       "(family $(lscpu | sed -n 's/^CPU family:[[:space:]]*//p' | head -n 1)," \
       "model $(lscpu | sed -n 's/^Model:[[:space:]]*//p' | head -n 1))"
  echo "cpus:      $(nproc)"
  echo "kernel:    $(uname -sr)"
  echo "checkout:  $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD -- src include tools CMakeLists.txt 2>/dev/null || echo ' (src/include/tools modified)')"
  echo "qparity:   $QP ($("$QP" --version 2>&1 | head -n 1))"
  echo "python:    $("$PY" --version 2>&1), torch $("$PY" -c 'import torch; print(torch.__version__, "threads", torch.get_num_threads())' 2>/dev/null)" \
       "(package $(dpkg-query -W -f='${Package} ${Version}' python3-torch 2>/dev/null))"
  echo "hyperfine: $(hyperfine --version)"
} >"$OUT/environment.txt"

# ---- wall time: one hyperfine invocation, all commands ----------------------------------------
# -N: no intermediate shell, so the millisecond-scale qparity runs carry no shell-spawn noise.
set -- "$QP" "$QP --no-diagnosis"
for e in $ENGINES; do set -- "$@" "$QP seed --backend $e"; done
for e in $ENGINES; do set -- "$@" "$PY $SEED_PY --backend $e"; done
hyperfine -N --ignore-failure --warmup 3 --min-runs "$MIN_RUNS" --style basic \
  --export-json "$OUT/hyperfine.json" --export-markdown "$OUT/hyperfine.md" "$@" \
  >"$OUT/hyperfine.txt" 2>&1 || die "hyperfine failed (see $OUT/hyperfine.txt)"

# ---- peak RSS: /usr/bin/time -f %M (KiB), maximum over MEM_RUNS runs ---------------------------
: >"$OUT/peak_rss.tsv"
for cmd in "$@"; do
  max=0; i=0
  while [ "$i" -lt "$MEM_RUNS" ]; do
    # shellcheck disable=SC2086  # the command is word-split on purpose, as hyperfine -N does
    /usr/bin/time -f %M -o "$OUT/time.tmp" $cmd >/dev/null 2>&1 || true
    kib=$(tail -n 1 "$OUT/time.tmp")
    [ "$kib" -gt "$max" ] && max=$kib
    i=$((i + 1))
  done
  printf '%s\t%s\n' "$cmd" "$max" >>"$OUT/peak_rss.tsv"
done
rm -f "$OUT/time.tmp"

# ---- table ------------------------------------------------------------------------------------
"$PY" - "$OUT" "$TIME_TARGET" "$MEM_TARGET" "$QP" "$PY $SEED_PY" >"$OUT/summary.txt" 2>"$OUT/summary.err" <<'EOF' || true
import json, os, sys
out, time_target, mem_target, qp, py = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
res = {r["command"]: r for r in json.load(open(os.path.join(out, "hyperfine.json")))["results"]}
rss = dict(line.rstrip("\n").split("\t") for line in open(os.path.join(out, "peak_rss.tsv")))
env = open(os.path.join(out, "environment.txt")).read()
def short(cmd):
    return cmd.replace(qp, "qparity").replace(py, "python seed_experiment.py")
def ms(cmd): return res[cmd]["mean"] * 1e3
def mib(cmd): return int(rss[cmd]) / 1024.0
print(env.rstrip())
print()
w = max(len(short(c)) for c in res)
print(f"{'command':<{w}}  {'wall ms (mean ± sd)':>21}  {'runs':>4}  {'peak RSS MiB':>12}")
for c, r in res.items():
    print(f"{short(c):<{w}}  {r['mean']*1e3:10.1f} ± {r['stddev']*1e3:7.1f}  {len(r['times']):>4}  {mib(c):12.1f}")
print()
pairs = [(f"{qp} seed --backend {e}", f"{py} --backend {e}", e) for e in ("qnnpack", "onednn")]
fastest_py = min((p for _, p, _ in pairs), key=ms)
pairs.append((qp, fastest_py, "defaults vs faster Python"))
ok = True
print(f"targets: time ratio python/qparity >= {time_target:g}x, memory ratio qparity/python <= {mem_target:g}")
for q, p, label in pairs:
    tr, mr = ms(p) / ms(q), mib(q) / mib(p)
    tp, mp = tr >= time_target, mr <= mem_target
    ok = ok and tp and mp
    print(f"  {label:<26} time {tr:7.1f}x  {'PASS' if tp else 'FAIL'}   memory {mr:6.3f} (1/{1/mr:.0f})  {'PASS' if mp else 'FAIL'}")
diag, plain = qp, f"{qp} --no-diagnosis"
dr = ms(diag) / ms(plain)
dp = dr <= 2.0
ok = ok and dp
print(f"  {'diagnosis + fixes overhead':<26} time {dr:7.2f}x of the experiment alone (target <= 2x)  {'PASS' if dp else 'FAIL'}")
print()
print("ALL TARGETS MET" if ok else "TARGET MISSED")
sys.exit(0 if ok else 1)
EOF
grep -q "^targets:" "$OUT/summary.txt" || die "could not summarise the results (see $OUT/summary.err)"
rm -f "$OUT/summary.err"
cat "$OUT/summary.txt"
echo "results: $OUT"
grep -q "^ALL TARGETS MET" "$OUT/summary.txt"
