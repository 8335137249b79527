#!/bin/sh
# Throughput of `qparity sweep` in seed-sized points (rows 256) per minute: diagnosis on (the
# default) and --no-diagnosis, on every core (the default --threads) and on one thread.
#
#   sh bench/run_sweep_benchmark.sh [-o DIR] [-r RUNS] [-c COUNT] [QPARITY_BINARY]
#
#   QPARITY_BINARY  the binary to measure (default: build/qparity; build it with scripts/build.sh)
#   -o DIR          results directory (default: bench/results-YYYYMMDD; git-ignored)
#   -r RUNS         timed runs per command (default 5, after one warm-up run)
#   -c COUNT        k values per series (default 500: 4 series x 500 = 2000 points)
#
# The sweep: --k 0.001:1000:COUNT --log --backend qnnpack,onednn --observer fused,plain --rows 256
# (every point is the full seed experiment, 1x3x256x256, both paths, every element compared;
# with diagnosis, every diverging point is also diagnosed). Uses hyperfine when installed
# (sh scripts/install-deps.sh --bench), otherwise times the runs itself.
#
# Target (issue "qparity sweep"): >= 30 000 points/min with the defaults on this 2-core machine.
# Exit status: 0 target met, 1 target missed, 2 setup error.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=""
RUNS=5
COUNT=500
TARGET=30000                 # points per minute, default command (diagnosis on, every core)

usage() { sed -n '5,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
die() { echo "run_sweep_benchmark.sh: $*" >&2; exit 2; }

while getopts o:r:c:h opt; do
  case "$opt" in
    o) OUT=$OPTARG ;;
    r) RUNS=$OPTARG ;;
    c) COUNT=$OPTARG ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -le 1 ] || usage
case "$RUNS" in ''|*[!0-9]*) die "-r must be a positive integer" ;; esac
case "$COUNT" in ''|*[!0-9]*) die "-c must be a positive integer" ;; esac
[ "$RUNS" -ge 1 ] || die "-r must be at least 1"
[ "$COUNT" -ge 2 ] || die "-c must be at least 2"
QP=${1:-"$ROOT/build/qparity"}
[ -n "$OUT" ] || OUT="$ROOT/bench/results-$(date +%Y%m%d)"
[ -x "$QP" ] || die "no qparity binary at $QP; build it with: sh scripts/build.sh"
case "$QP" in *[[:space:]]*) die "the qparity path must not contain spaces (hyperfine -N splits on them)" ;; esac
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

SWEEP="$QP sweep --k 0.001:1000:$COUNT --log --backend qnnpack,onednn --observer fused,plain --rows 256"
POINTS=$((4 * COUNT))
# name|extra options
CASES="default|
no-diagnosis|--no-diagnosis
threads-1|--threads 1
threads-1-no-diagnosis|--threads 1 --no-diagnosis"

# ---- preflight: every command runs the whole sweep (qparity exits 1 when some point diverges,
# which this sweep does, so the timing must ignore exit codes; check them here instead).
echo "$CASES" | while IFS='|' read -r name extra; do
  rc=0
  # shellcheck disable=SC2086  # word splitting of the command is intended
  $SWEEP $extra >"$OUT/sweep-$name.out" 2>&1 || rc=$?
  [ "$rc" -le 1 ] || die "'$SWEEP $extra' exited $rc (see $OUT/sweep-$name.out)"
  head -n 1 "$OUT/sweep-$name.out" | grep -q "^qparity sweep: $POINTS points " ||
    die "'$SWEEP $extra' did not run $POINTS points (see $OUT/sweep-$name.out)"
done

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "qparity: $("$QP" --version) ($QP)"
  echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' + uncommitted changes')"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores online"
  echo "kernel: $(uname -sr)"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  command -v hyperfine >/dev/null 2>&1 && hyperfine --version
} >"$OUT/sweep-environment.txt"

# ---- timing: mean and standard deviation of RUNS runs per command, in seconds ----------------
TIMES="$OUT/sweep-times.tsv"
: >"$TIMES"
if command -v hyperfine >/dev/null 2>&1; then
  set --
  names=""
  while IFS='|' read -r name extra; do
    set -- "$@" -n "$name" "$SWEEP $extra"
    names="$names $name"
  done <<EOF
$CASES
EOF
  hyperfine -N --ignore-failure --warmup 1 --runs "$RUNS" --style basic \
    --export-csv "$OUT/sweep-hyperfine.csv" --export-json "$OUT/sweep-hyperfine.json" \
    "$@" >"$OUT/sweep-hyperfine.txt" 2>&1 || die "hyperfine failed (see $OUT/sweep-hyperfine.txt)"
  # CSV: command,mean,stddev,median,user,system,min,max
  awk -F, 'NR > 1 { printf "%s\t%s\t%s\t%s\t%s\t%s\n", $1, $2, $3, $7, $8, $5 + $6 }' \
    "$OUT/sweep-hyperfine.csv" >"$TIMES"
else
  now() { date +%s.%N; }
  echo "$CASES" | while IFS='|' read -r name extra; do
    # shellcheck disable=SC2086
    $SWEEP $extra >/dev/null 2>&1 || true          # warm-up
    samples=""
    i=0
    while [ "$i" -lt "$RUNS" ]; do
      t0=$(now)
      # shellcheck disable=SC2086
      $SWEEP $extra >/dev/null 2>&1 || true
      t1=$(now)
      samples="$samples $(echo "$t1 $t0" | awk '{ printf "%.6f", $1 - $2 }')"
      i=$((i + 1))
    done
    echo "$samples" | awk -v n="$name" '{
      s = 0; for (i = 1; i <= NF; i++) s += $i; m = s / NF
      v = 0; for (i = 1; i <= NF; i++) v += ($i - m) ^ 2; sd = NF > 1 ? sqrt(v / (NF - 1)) : 0
      lo = $1; hi = $1; for (i = 1; i <= NF; i++) { if ($i < lo) lo = $i; if ($i > hi) hi = $i }
      printf "%s\t%.6f\t%.6f\t%.6f\t%.6f\t\n", n, m, sd, lo, hi }' >>"$TIMES"
  done
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/sweep-environment.txt"

# ---- summary ---------------------------------------------------------------------------------
awk -F'\t' -v points="$POINTS" -v target="$TARGET" -v runs="$RUNS" '
  { name[NR] = $1; mean[$1] = $2; sd[$1] = $3; lo[$1] = $4; hi[$1] = $5; cpu[$1] = $6; n = NR }
  END {
    printf "qparity sweep, %d points of rows 256 (4 series x %d k), %d timed runs each\n", points, points / 4, runs
    printf "%-24s %8s %7s %18s %10s %10s\n", "command", "mean s", "sd s", "points/min (mean)", "best run", "cores used"
    for (i = 1; i <= n; i++) {
      c = name[i]
      used = cpu[c] == "" ? "-" : sprintf("%.2f", cpu[c] / mean[c])
      printf "%-24s %8.3f %7.3f %18.0f %10.0f %10s\n", c, mean[c], sd[c], points * 60 / mean[c], points * 60 / lo[c], used
    }
    if ("threads-1" in mean && "default" in mean)
      printf "\nscaling, diagnosis on:  --threads 1 / default = %.2fx\n", mean["threads-1"] / mean["default"]
    if ("threads-1-no-diagnosis" in mean && "no-diagnosis" in mean)
      printf "scaling, --no-diagnosis: --threads 1 / default = %.2fx\n", mean["threads-1-no-diagnosis"] / mean["no-diagnosis"]
    printf "(cores used = CPU time / wall time; below the thread count when other processes compete\n for the cores: compare the load averages in sweep-environment.txt)\n"
    rate = points * 60 / mean["default"]
    printf "\ntarget: >= %d points/min with the defaults: %.0f -> %s\n", target, rate, (rate >= target) ? "PASS" : "FAIL"
    if (rate >= target) exit 0; else exit 1
  }' "$TIMES" >"$OUT/sweep-summary.txt" && status=0 || status=$?
cat "$OUT/sweep-summary.txt"
cat "$OUT/sweep-environment.txt"
echo "results in $OUT"
exit "$status"
