#!/bin/sh
# Wall time and peak memory of `qparity model` on ResNet-18 and MobileNetV2 (both paths, every layer
# compared) against libtorch loading and running the two real models once, same machine, same
# thread count.
#
#   sh bench/run_model_benchmark.sh [-o DIR] [-r MIN_RUNS] [-w WARMUP] [-t THREADS] [-M MODELS]
#                                   [-E ENGINES] [-s SIZES] [-d MODELS_DIR] [QPARITY_BINARY]
#
#   QPARITY_BINARY  the binary to measure (default: build/qparity; build it with scripts/build.sh)
#   -o DIR          results directory (default: bench/results-YYYYMMDD; git-ignored)
#   -r MIN_RUNS     hyperfine --min-runs per command (default 3)
#   -w WARMUP       hyperfine --warmup per command (default 1)
#   -t THREADS      thread count of both sides (default 1): qparity --threads N --torch-threads N,
#                   torch.set_num_threads(N)
#   -M MODELS       comma-separated models of tests/model/make_models.py (default resnet18,mobilenet_v2)
#   -E ENGINES      comma-separated engines (default qnnpack,onednn)
#   -s SIZES        comma-separated inputs (default input,224): `input` is the cache's input.pt
#                   (1x3x64x64 for these two models), an integer S the synthetic 1x3xSxS input
#                   (element i = sin(0.37 i), made alike by qparity --input-shape and model_libtorch.py)
#   -d MODELS_DIR   the generated models (MODELS_DIR/<model>/<engine>/{qat,int8,input}.pt); default:
#                   the test suite's cache, found (and, for a missing model, generated: minutes)
#                   with tests/model/check_model_parity.py's models_dir() ($QPARITY_MODEL_CACHE,
#                   default ~/.cache/qparity/models)
#
# Per model x engine x input, three commands, each timed by hyperfine (-N) with its peak RSS taken
# by GNU time (/usr/bin/time -f %M) around every timed run:
#   qparity         qparity model QAT INT8 --input|--input-shape ... --backend E --json F (reference check on)
#   qparity-noref   the same with --no-reference
#   libtorch        /usr/bin/python3 bench/model_libtorch.py QAT INT8 --backend E --input|--input-shape ...
# plus `model_libtorch.py --import-only` (interpreter start + import torch) once.
#
# Needs hyperfine, GNU time and Debian's /usr/bin/python3 with python3-torch
# (sh scripts/install-deps.sh --bench). It builds and installs nothing.
#
# Target (issue "qparity model speed"): `qparity model --no-reference` faster than libtorch loading
# and running the two models once (time ratio qparity / libtorch < 1) with peak RSS <= libtorch's
# (ratio <= 1), for every model x engine x input. Exit status: 0 target met, 1 missed, 2 setup
# error (a missing tool, binary or model, or a command that does not produce its result).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3          # Debian's interpreter: the only one that has torch here
LT_PY="$ROOT/bench/model_libtorch.py"
OUT=""
MIN_RUNS=3
WARMUP=1
THREADS=1
MODELS=resnet18,mobilenet_v2
ENGINES=qnnpack,onednn
SIZES=input,224
MODELS_DIR=""

usage() { sed -n '6,23p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
die() { echo "run_model_benchmark.sh: $*" >&2; exit 2; }
posint() { case "$2" in ''|*[!0-9]*|0) die "$1 must be a positive integer, not '$2'" ;; esac; }

while getopts o:r:w:t:M:E:s:d:h opt; do
  case "$opt" in
    o) OUT=$OPTARG ;;
    r) MIN_RUNS=$OPTARG ;;
    w) WARMUP=$OPTARG ;;
    t) THREADS=$OPTARG ;;
    M) MODELS=$OPTARG ;;
    E) ENGINES=$OPTARG ;;
    s) SIZES=$OPTARG ;;
    d) MODELS_DIR=$OPTARG ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -le 1 ] || usage
posint -r "$MIN_RUNS"
case "$WARMUP" in ''|*[!0-9]*) die "-w must be a non-negative integer, not '$WARMUP'" ;; esac
posint -t "$THREADS"
for e in $(echo "$ENGINES" | tr ',' ' '); do
  case "$e" in qnnpack|onednn) ;; *) die "-E: '$e' is not one of qnnpack, onednn" ;; esac
done
for s in $(echo "$SIZES" | tr ',' ' '); do
  [ "$s" = input ] || posint "-s (a size)" "$s"
done
QP=${1:-"$ROOT/build/qparity"}
[ -n "$OUT" ] || OUT="$ROOT/bench/results-$(date +%Y%m%d)"

# ---- preflight: tools, binary, models ----------------------------------------------------------
command -v hyperfine >/dev/null 2>&1 || die "hyperfine not found; run: sh scripts/install-deps.sh --bench"
[ -x /usr/bin/time ] || die "GNU time (/usr/bin/time) not found; run: sh scripts/install-deps.sh --bench"
[ -x "$PY" ] || die "$PY not found; run: sh scripts/install-deps.sh --bench"
"$PY" -c 'import torch' 2>/dev/null || die "$PY cannot import torch; run: sh scripts/install-deps.sh --bench"
[ -x "$QP" ] || die "no qparity binary at $QP; build it with: sh scripts/build.sh"
case "$QP$LT_PY" in *[[:space:]]*) die "the qparity and checkout paths must not contain spaces (hyperfine -N splits on them)" ;; esac
mkdir -p "$OUT/model-json" "$OUT/model-rss" "$OUT/model-out"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/model-json/*.json "$OUT"/model-rss/*.txt
case "$OUT" in *[[:space:]]*) die "the results directory must not contain spaces (hyperfine -N splits on them)" ;; esac

if [ -z "$MODELS_DIR" ]; then
  "$PY" - "$ROOT/tests/model" "$MODELS" >"$OUT/model-cache.out" 2>&1 <<'EOF' || die "could not locate or generate the models (see $OUT/model-cache.out)"
import sys
sys.path.insert(0, sys.argv[1])
import check_model_parity
print("MODELS_DIR=" + check_model_parity.models_dir(sys.argv[2].split(","), 2), flush=True)
EOF
  MODELS_DIR=$(sed -n 's/^MODELS_DIR=//p' "$OUT/model-cache.out" | tail -n 1)
fi
[ -d "$MODELS_DIR" ] || die "no models directory '$MODELS_DIR'"
MODELS_DIR=$(cd "$MODELS_DIR" && pwd)
case "$MODELS_DIR" in *[[:space:]]*) die "the models directory must not contain spaces (hyperfine -N splits on them)" ;; esac

# Each case: model engine size. Input options per size.
CASES=""
for m in $(echo "$MODELS" | tr ',' ' '); do
  for e in $(echo "$ENGINES" | tr ',' ' '); do
    for f in qat.pt int8.pt input.pt; do
      [ -f "$MODELS_DIR/$m/$e/$f" ] || die "missing $MODELS_DIR/$m/$e/$f"
    done
    for s in $(echo "$SIZES" | tr ',' ' '); do CASES="$CASES $m:$e:$s"; done
  done
done
input_opts() {  # model engine size
  if [ "$3" = input ]; then echo "--input $MODELS_DIR/$1/$2/input.pt"; else echo "--input-shape 1,3,$3,$3"; fi
}

# The commands of one case, one per line: label<TAB>command. hyperfine must ignore exit codes
# (qparity exits 1 when the QAT and int8 bins diverge, the normal outcome), so the preflight below
# checks that each does the real work.
case_commands() {  # model engine size
  d="$MODELS_DIR/$1/$2"; inp=$(input_opts "$1" "$2" "$3"); l="$1-$2-$3"
  qm="$QP model $d/qat.pt $d/int8.pt $inp --backend $2 --threads $THREADS --torch-threads $THREADS"
  printf '%s\t%s\n' "$l-libtorch" "$PY $LT_PY $d/qat.pt $d/int8.pt --backend $2 $inp --threads $THREADS"
  printf '%s\t%s\n' "$l-qparity-noref" "$qm --no-reference --json $OUT/model-json/$l-qparity-noref.json"
  printf '%s\t%s\n' "$l-qparity" "$qm --json $OUT/model-json/$l-qparity.json"
}

echo "preflight: every command once (models: $MODELS_DIR)"
IMPORT_CMD="$PY $LT_PY --import-only --threads $THREADS"
$IMPORT_CMD >"$OUT/model-out/import-only.out" 2>&1 || die "'$IMPORT_CMD' failed (see $OUT/model-out/import-only.out)"
: >"$OUT/model-checks.tsv"
for c in $CASES; do
  m=${c%%:*}; rest=${c#*:}; e=${rest%%:*}; s=${rest#*:}; l="$m-$e-$s"
  case_commands "$m" "$e" "$s" >"$OUT/model-cmds.tmp"
  while IFS="$(printf '\t')" read -r label cmd; do
    rc=0
    # shellcheck disable=SC2086  # word splitting of the command is intended, as hyperfine -N does
    $cmd >"$OUT/model-out/$label.out" 2>&1 || rc=$?
    case "$label" in
      *-libtorch)
        if [ "$rc" -ne 0 ] || ! grep -q '^RESULT:' "$OUT/model-out/$label.out"; then
          die "'$cmd' exited $rc or printed no RESULT line (see $OUT/model-out/$label.out)"
        fi ;;
      *)
        if [ "$rc" -gt 1 ] || [ ! -s "$OUT/model-json/$label.json" ]; then
          die "'$cmd' exited $rc or wrote no JSON report (see $OUT/model-out/$label.out)"
        fi ;;
    esac
  done <"$OUT/model-cmds.tmp"
  # Both sides did the same work: libtorch's outputs equal qparity's (JSON) to the float32 bit, and
  # qparity's reference check ran and found the emulation bit-exact (recorded, not fatal).
  same=yes
  # shellcheck disable=SC2046
  "$PY" "$LT_PY" "$MODELS_DIR/$m/$e/qat.pt" "$MODELS_DIR/$m/$e/int8.pt" --backend "$e" $(input_opts "$m" "$e" "$s") \
    --threads "$THREADS" --compare-json "$OUT/model-json/$l-qparity.json" >"$OUT/model-out/$l-compare.out" 2>&1 || same=no
  printf '%s\t%s\n' "$l" "$same" >>"$OUT/model-checks.tsv"
  [ "$same" = yes ] || echo "warning: $l: libtorch's outputs differ from qparity's (see $OUT/model-out/$l-compare.out)" >&2
done
rm -f "$OUT/model-cmds.tmp"

# ---- environment ------------------------------------------------------------------------------
{
  echo "date:      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host cpu:  $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)"
  echo "cpus:      $(nproc)"
  echo "kernel:    $(uname -sr)"
  echo "checkout:  $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD -- src include tools frontends CMakeLists.txt 2>/dev/null || echo ' (src/include/tools/frontends modified)')"
  echo "qparity:   $QP ($("$QP" --version 2>&1 | head -n 1)), built $(date -u -r "$QP" +%Y-%m-%dT%H:%M:%SZ)"
  echo "python:    $("$PY" --version 2>&1), $(sed 's/^RESULT: //' "$OUT/model-out/import-only.out")" \
       "(package $(dpkg-query -W -f='${Package} ${Version}' python3-torch 2>/dev/null))"
  echo "hyperfine: $(hyperfine --version)"
  echo "models:    $MODELS_DIR"
  echo "threads:   $THREADS (qparity --threads/--torch-threads, torch.set_num_threads)"
  echo "runs:      hyperfine -N --warmup $WARMUP --min-runs $MIN_RUNS"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/model-environment.txt"

# ---- wall time (hyperfine) and peak RSS (GNU time around every run), one hyperfine per case ----
# One invocation per case keeps the three compared commands close in time on a shared machine.
# GNU time adds one fork+exec (about a millisecond) to every command alike.
rss_wrap() { echo "/usr/bin/time -f %M -a -o $OUT/model-rss/$1.txt"; }
run_hyperfine() {  # name, then label<TAB>command lines on stdin
  name=$1; set --
  while IFS="$(printf '\t')" read -r label cmd; do
    : >"$OUT/model-rss/$label.txt"
    set -- "$@" -n "$label" "$(rss_wrap "$label") $cmd"
  done
  echo "hyperfine: $name ($(cut -d' ' -f1-3 /proc/loadavg))"
  hyperfine -N --ignore-failure --warmup "$WARMUP" --min-runs "$MIN_RUNS" --style basic \
    --export-json "$OUT/model-hyperfine-$name.json" "$@" >"$OUT/model-hyperfine-$name.txt" 2>&1 ||
    die "hyperfine failed (see $OUT/model-hyperfine-$name.txt)"
  echo "$name	$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/model-load.tsv"
}
: >"$OUT/model-load.tsv"
rm -f "$OUT"/model-hyperfine-*.json "$OUT"/model-hyperfine-*.txt
printf '%s\t%s\n' import-only "$IMPORT_CMD" | run_hyperfine import-only
for c in $CASES; do
  m=${c%%:*}; rest=${c#*:}; e=${rest%%:*}; s=${rest#*:}
  case_commands "$m" "$e" "$s" | run_hyperfine "$m-$e-$s"
done
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/model-environment.txt"

# ---- tables -----------------------------------------------------------------------------------
"$PY" - "$OUT" "$CASES" >"$OUT/model-results.md" 2>"$OUT/model-summary.err" <<'EOF' || true
import glob, json, os, sys
out, cases = sys.argv[1], sys.argv[2].split()
res = {}
for path in glob.glob(os.path.join(out, "model-hyperfine-*.json")):
    for r in json.load(open(path))["results"]:
        res[r["command"]] = r
def rss_kib(label):
    vals = [int(x) for x in open(os.path.join(out, "model-rss", label + ".txt")).read().split() if x.isdigit()]
    return max(vals)
checks = dict(l.rstrip("\n").split("\t") for l in open(os.path.join(out, "model-checks.tsv")))
load = [l.rstrip("\n").split("\t") for l in open(os.path.join(out, "model-load.tsv"))]
# hyperfine stores the --command-name as "command"
def t(label): return res[label]["mean"]
def sd(label): return res[label]["stddev"] or 0.0   # null with a single run
def cpu(label): return res[label]["user"] + res[label]["system"]
def runs(label): return len(res[label]["times"])

env = open(os.path.join(out, "model-environment.txt")).read().rstrip()
print("# `qparity model` against libtorch loading and running the two models once\n")
print("```\n" + env + "\n```\n")
imp = "import-only"
print(f"Python start + `import torch` alone (`model_libtorch.py --import-only`): "
      f"{t(imp):.2f} ± {sd(imp):.2f} s wall, {cpu(imp):.2f} s CPU, {rss_kib(imp)/1024:.0f} MiB peak RSS, {runs(imp)} runs.\n")

print("## Wall time, CPU time (user + sys), peak RSS\n")
print("| model | engine | input | command | wall s (mean ± sd) | runs | CPU s | peak RSS MiB |")
print("|---|---|---|---|---:|---:|---:|---:|")
def input_desc(label):
    try:
        j = json.load(open(os.path.join(out, "model-json", label + "-qparity.json")))
        return "x".join(str(d) for d in j["input"]["shape"])
    except Exception:
        return "?"
for c in cases:
    m, e, s = c.split(":")
    l = f"{m}-{e}-{s}"
    shape = input_desc(l)
    for kind, text in (("libtorch", "libtorch (load + run both)"), ("qparity-noref", "qparity --no-reference"),
                       ("qparity", "qparity (reference check)")):
        x = f"{l}-{kind}"
        print(f"| {m} | {e} | {s} ({shape}) | {text} | {t(x):.2f} ± {sd(x):.2f} | {runs(x)} | {cpu(x):.2f} | {rss_kib(x)/1024:.0f} |")
print()

print("## Ratios (qparity / libtorch)\n")
print("Time: mean wall time ratio; `excl. import` divides by libtorch's time minus the Python start + "
      "`import torch` time above (libtorch's own load and run). CPU: (user + sys) ratio, less sensitive "
      "to other processes on the machine. Memory: peak RSS ratio. Target: `--no-reference` time ratio < 1 "
      "and memory ratio <= 1.\n")
print("| model | engine | input | --no-reference: time | excl. import | CPU | memory | target | with reference: time | CPU | memory | outputs equal |")
print("|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|---|")
ok = True
for c in cases:
    m, e, s = c.split(":")
    l = f"{m}-{e}-{s}"
    lt, nr, rf = f"{l}-libtorch", f"{l}-qparity-noref", f"{l}-qparity"
    tr = t(nr) / t(lt)
    lt_body = t(lt) - t(imp)
    tx = f"{t(nr) / lt_body:.2f}" if lt_body > 0 else "n/a"
    cr = cpu(nr) / cpu(lt)
    mr = rss_kib(nr) / rss_kib(lt)
    met = tr < 1 and mr <= 1
    ok = ok and met
    print(f"| {m} | {e} | {s} | {tr:.2f} | {tx} | {cr:.2f} | {mr:.2f} | {'MET' if met else 'MISSED'} "
          f"| {t(rf)/t(lt):.2f} | {cpu(rf)/cpu(lt):.2f} | {rss_kib(rf)/rss_kib(lt):.2f} | {checks.get(l, '?')} |")
print()
print("`outputs equal`: libtorch's QAT and int8 outputs equal qparity's (its JSON report) to the float32 bit, "
      "so both sides ran the same models on the same input.\n")
print("Load average (1, 5, 15 min) after each hyperfine invocation: " +
      "; ".join(f"{n} {v}" for n, v in load) + ".\n")
print("TARGET MET" if ok else "TARGET MISSED")
sys.exit(0 if ok else 1)
EOF
grep -q "^TARGET M" "$OUT/model-results.md" || die "could not summarise the results (see $OUT/model-summary.err)"
[ -s "$OUT/model-summary.err" ] || rm -f "$OUT/model-summary.err"
cat "$OUT/model-results.md"
echo "results: $OUT"
grep -q "^TARGET MET" "$OUT/model-results.md"
