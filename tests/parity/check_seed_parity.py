#!/usr/bin/python3
"""Parity test: `qparity seed` against real PyTorch 1.13.1 (torch_seed_oracle.py).

For every case the oracle runs in this process (torch is imported once) and the binary runs as
    QPARITY seed --k K --backend E --observer O --rows R --json TMPFILE
Both JSON documents are then compared field by field:
  - bins_row, zero points, counts, first_mismatch index/bins, rows_identical, scenario: exactly;
  - scales, error_max, first_mismatch.error_fp32: bit-exact as float32;
  - error_mean: within 1e-5 relative (summation order may differ), or both exactly 0;
  - the exit code: 0 if the oracle's bin_mismatch_count is 0, else 1 (2 or anything else = failure).
An off-by-one is a finding, never a tolerance: only error_mean has one, for the reason above.

Cases: the seed itself (k=1, rows=256, fused) on qnnpack and onednn; fixed interesting k values
(plus the three doubles around the fused 6.1e-5 scale floor) on both engines and both observers;
then --cases seeded random variants (k log-uniform over [1e-3, 1e3], engine alternating, observer
alternating every two cases, rows from a fixed set).
k is handed to both sides as repr(k), so both parse the same double.

Usage (always with Debian's Python, which has torch):
    /usr/bin/python3 tests/parity/check_seed_parity.py --qparity build/qparity [--cases 48] [--seed 1]
Exit status 0 if every case matches, 1 otherwise.
"""
import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_seed_oracle as oracle  # noqa: E402  (imports torch once)

ENGINES = ("qnnpack", "onednn")
OBSERVERS = ("fused", "plain")
RANDOM_ROWS = (1, 2, 3, 7, 16, 64, 256)
FIXED_KS = (0.01, 0.005, 0.001, 1000.0, 0.5, 2.0, 3.0)
# The fused module's C++ ChooseQuantizationParams floors scales at f(6.1e-5) (numerics.md eq. 2.4): for weight min 0, max k its scale is k/255, so the floor starts just below this k.
_FLOOR_K = float(np.float32(6.1e-5)) * 255.0
EDGE_KS = (float(np.nextafter(_FLOOR_K, 0.0)), _FLOOR_K, float(np.nextafter(_FLOOR_K, 1.0)))
FIXED_ROWS = 16
KNOB_CASES = (
    {"weight_qscheme": "per_tensor_affine"},
    {"weight_quant_min": -127},
    {"reduce_range": True},
    {"weight_pattern": "negative"},
    {"weight_pattern": "mixed"},
    {"weight_observer_max": 1.0 * 127.5 / 127.0},
    {"weight_pattern": "dense"},
    {"weight_qscheme": "per_channel_symmetric", "weight_pattern": "mixed"},
    {"weight_qscheme": "per_channel_affine", "weight_pattern": "dense"},
    {"output_observer_max": 0.4},
    {"output_observer_min": -0.0058823529411764705, "output_observer_max": 0.49411764705882355,
     "weight_quant_min": -127},
    {"input_scale": 0.0039, "weight_scale": 0.0079, "output_scale": 0.0041},
    # Consistent grids with three products per output: only the integer kernel differs.
    {"weight_pattern": "dense", "weight_quant_min": -127, "output_observer_max": 0.4,
     "output_scale": 0.0015686274273321033, "weight_scale": 0.005511811003088951},
)
MEAN_RTOL = 1e-5
PATH_KEYS = ("bins_row", "weight_scale", "weight_zero_point", "input_scale", "input_zero_point",
             "output_scale", "output_zero_point")
SCALE_KEYS = ("weight_scale", "input_scale", "output_scale")


def build_cases(n_random: int, seed: int):
    cases = [dict(k=1.0, engine=e, observer="fused", rows=256, origin="seed") for e in ENGINES]
    for k in FIXED_KS + EDGE_KS:
        for e in ENGINES:
            for o in OBSERVERS:
                cases.append(dict(k=k, engine=e, observer=o, rows=FIXED_ROWS, origin="fixed"))
    # The quantization knobs qparity exposes beyond the seed, each alone, on both engines and
    # observers, at the seed's k and at a k below the fused module's scale floor.
    for knobs in KNOB_CASES:
        for k in (1.0, 0.01):
            for e in ENGINES:
                for o in OBSERVERS:
                    cases.append(dict(k=k, engine=e, observer=o, rows=2, knobs=knobs,
                                      origin="knobs"))
    # Real qnnpack refuses to create the conv when a padding channel's requantization scale
    # (weight scale 1.0) is not normal: x_s / out_s = 1/k < FLT_MIN for k = 1e38.
    for o in OBSERVERS:
        cases.append(dict(k=1e38, engine="qnnpack", observer=o, rows=1, origin="qnnpack refuses"))
    rng = random.Random(seed)
    for i in range(n_random):
        k = 10.0 ** rng.uniform(-3.0, 3.0)
        cases.append(dict(k=k, engine=ENGINES[i % 2], observer=OBSERVERS[(i // 2) % 2],
                          rows=rng.choice(RANDOM_ROWS), origin="random#%d" % i))
    return cases


def case_label(c) -> str:
    return "k=%r backend=%s observer=%s rows=%d knobs=%s (%s)" % (
        c["k"], c["engine"], c["observer"], c["rows"], c.get("knobs") or {}, c["origin"])


def knob_flags(knobs) -> list:
    """qparity seed options for a knob dictionary (oracle.DEFAULT_KNOBS keys)."""
    flags = []
    for key, value in (knobs or {}).items():
        if key == "reduce_range":
            flags += ["--reduce-range"] if value else []
        elif value is not None:
            flags += ["--" + key.replace("_", "-"), repr(value) if isinstance(value, float) else str(value)]
    return flags


# ---- field comparators: each returns None if equal, else a short description of the difference.

def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def f32_bits(v) -> int:
    return int(np.array([v], dtype=np.float64).astype(np.float32).view(np.uint32)[0])


def cmp_exact_int(exp, got):
    if not _is_int(got):
        return "expected integer %r, got %r (%s)" % (exp, got, type(got).__name__)
    return None if exp == got else "expected %d, got %d" % (exp, got)


def cmp_bool(exp, got):
    if not isinstance(got, bool):
        return "expected boolean %r, got %r (%s)" % (exp, got, type(got).__name__)
    return None if exp == got else "expected %r, got %r" % (exp, got)


def cmp_f32(exp, got):
    if not _is_num(got):
        return "expected float32 %r, got %r (%s)" % (exp, got, type(got).__name__)
    eb, gb = f32_bits(exp), f32_bits(float(got))
    if eb == gb:
        return None
    ulps = (np.int64(np.array([gb], np.uint32).view(np.int32)[0])
            - np.int64(np.array([eb], np.uint32).view(np.int32)[0]))
    return "expected %r (0x%08x), got %r (0x%08x), %+d ulp as float32" % (
        float(np.float32(exp)), eb, float(np.float32(got)), gb, int(ulps))


def cmp_mean(exp, got):
    if not _is_num(got):
        return "expected %r, got %r (%s)" % (exp, got, type(got).__name__)
    got = float(got)
    if not (math.isfinite(exp) and math.isfinite(got)):
        # torch.mean sums in float32 and can overflow to inf for huge k; no tolerance applies.
        return None if exp == got or (math.isnan(exp) and math.isnan(got)) else \
            "expected %r, got %r (non-finite: exact match required)" % (exp, got)
    if exp == 0.0 or got == 0.0:
        return None if exp == got else "expected %r, got %r (one of them exactly 0)" % (exp, got)
    rel = abs(got - exp) / abs(exp)
    return None if rel <= MEAN_RTOL else "expected %r, got %r (relative diff %.3g > %g)" % (
        exp, got, rel, MEAN_RTOL)


def cmp_bins(exp, got):
    if not isinstance(got, list) or not all(_is_int(v) for v in got):
        return "expected a list of %d ints, got %s" % (len(exp), type(got).__name__)
    if len(got) != len(exp):
        return "expected %d bins, got %d" % (len(exp), len(got))
    diff = [i for i, (a, b) in enumerate(zip(exp, got)) if a != b]
    if not diff:
        return None
    i = diff[0]
    lo, hi = max(0, i - 2), min(len(exp), i + 4)
    return "%d of %d bins differ; first at column %d: expected %s, got %s (columns %d..%d)" % (
        len(diff), len(exp), i, exp[lo:hi], got[lo:hi], lo, hi - 1)


def cmp_first(exp, got):
    if exp is None or got is None:
        return None if exp is None and got is None else "expected %s, got %s" % (
            json.dumps(exp), json.dumps(got))
    if not isinstance(got, dict):
        return "expected an object, got %r" % (got,)
    out = []
    for key, fn in (("index", None), ("error_fp32", cmp_f32), ("expected_q", cmp_exact_int),
                    ("actual_q", cmp_exact_int)):
        if key not in got:
            out.append("%s missing" % key)
            continue
        if key == "index":
            ok = isinstance(got[key], list) and len(got[key]) == 4 and all(_is_int(v) for v in got[key])
            d = None if ok and got[key] == exp[key] else "expected %s, got %s" % (exp[key], got[key])
        else:
            d = fn(exp[key], got[key])
        if d:
            out.append("%s: %s" % (key, d))
    return "; ".join(out) if out else None


def compare_docs(exp: dict, got: dict):
    """Yields (field, description) for every difference between oracle and qparity documents."""
    # scenario: what each side believes it ran (k must be the same double on both sides)
    sc = got.get("scenario")
    if not isinstance(sc, dict):
        yield "scenario", "missing"
    else:
        es = exp["scenario"]
        if not _is_num(sc.get("k")) or float(sc.get("k")) != es["k"]:
            yield "scenario.k", "expected %r, got %r" % (es["k"], sc.get("k"))
        for key in ("backend", "observer"):
            if sc.get(key) != es[key]:
                yield "scenario." + key, "expected %r, got %r" % (es[key], sc.get(key))
        d = cmp_exact_int(es["rows"], sc.get("rows"))
        if d:
            yield "scenario.rows", d

    paths = got.get("paths")
    for pname in ("fake_quant", "int8"):
        gp = paths.get(pname) if isinstance(paths, dict) else None
        if not isinstance(gp, dict):
            yield "paths." + pname, "missing"
            continue
        ep = exp["paths"][pname]
        for key in PATH_KEYS:
            field = "paths.%s.%s" % (pname, key)
            if key not in gp:
                yield field, "missing"
                continue
            if key == "bins_row":
                d = cmp_bins(ep[key], gp[key])
            elif key in SCALE_KEYS:
                d = cmp_f32(ep[key], gp[key])
            else:
                d = cmp_exact_int(ep[key], gp[key])
            if d:
                yield field, d

    gc = got.get("compare")
    if not isinstance(gc, dict):
        yield "compare", "missing"
        return
    ec = exp["compare"]
    checks = (("error_mean", cmp_mean), ("error_max", cmp_f32),
              ("fp32_mismatch_count", cmp_exact_int), ("bin_mismatch_count", cmp_exact_int),
              ("first_mismatch", cmp_first), ("rows_identical", cmp_bool))
    for key, fn in checks:
        if key not in gc:
            yield "compare." + key, "missing"
            continue
        d = fn(ec[key], gc[key])
        if d:
            yield "compare." + key, d


def extra_keys(exp, got, prefix=""):
    """Keys qparity emits that the oracle does not (reported once as a note, not a failure)."""
    if not isinstance(exp, dict) or not isinstance(got, dict):
        return []
    out = []
    for key, val in got.items():
        if key not in exp:
            out.append(prefix + key)
        else:
            out += extra_keys(exp[key], val, prefix + key + ".")
    return out


def run_qparity(binary: str, case, json_path: str, timeout: float):
    cmd = [binary, "seed", "--k", repr(case["k"]), "--backend", case["engine"],
           "--observer", case["observer"], "--rows", str(case["rows"]), "--json", json_path,
           *knob_flags(case.get("knobs"))]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return cmd, proc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="qparity seed vs real PyTorch parity test")
    ap.add_argument("--qparity", required=True, help="path to the qparity binary")
    ap.add_argument("--cases", type=int, default=48, help="number of random cases (default 48)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the random cases (default 1)")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per qparity run")
    ap.add_argument("--dump", metavar="DIR", help="on a mismatch, write both JSON documents here")
    ap.add_argument("-v", "--verbose", action="store_true", help="print a line per case")
    a = ap.parse_args(argv)

    binary = os.path.abspath(a.qparity)
    if not os.access(binary, os.X_OK):
        print("error: %s is not an executable file" % binary, file=sys.stderr)
        return 2

    cases = build_cases(a.cases, a.seed)
    n_pass = 0
    failed = []
    notes = set()
    kinds = {"bins differ": 0, "fp32 only differs": 0, "identical": 0}
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="qparity-seed-") as tmp:
        for ci, case in enumerate(cases):
            label = case_label(case)
            exp = oracle.run_seed(case["k"], case["engine"], case["observer"], case["rows"],
                                  case.get("knobs"))
            if "error" in exp:
                # PyTorch refuses this configuration; qparity must refuse it too (exit 2).
                cmd, proc = run_qparity(binary, case, os.path.join(tmp, "refused.json"), a.timeout)
                if proc.returncode == 2 and proc.stderr.strip():
                    n_pass += 1
                    kinds["refused"] = kinds.get("refused", 0) + 1
                else:
                    failed.append(label)
                    print("FAIL %s\n     PyTorch refuses it (%s) but qparity exited %d"
                          % (label, exp["error"], proc.returncode))
                continue
            ec = exp["compare"]
            kinds["bins differ" if ec["bin_mismatch_count"] else
                  "fp32 only differs" if ec["fp32_mismatch_count"] else "identical"] += 1

            json_path = os.path.join(tmp, "case%03d.json" % ci)
            problems = []
            try:
                cmd, proc = run_qparity(binary, case, json_path, a.timeout)
            except subprocess.TimeoutExpired:
                problems.append(("process", "timed out after %gs" % a.timeout))
                cmd, proc = None, None
            got = None
            if proc is not None:
                want_rc = 0 if ec["bin_mismatch_count"] == 0 else 1
                if proc.returncode != want_rc:
                    msg = "exit code %d, expected %d" % (proc.returncode, want_rc)
                    if proc.returncode not in (0, 1):
                        msg += " (failure); stderr: %s" % proc.stderr.decode(errors="replace").strip()[-500:]
                    problems.append(("exit_code", msg))
                try:
                    with open(json_path) as fh:
                        got = json.load(fh)
                except (OSError, ValueError) as e:
                    problems.append(("json", "cannot read %s: %s" % (json_path, e)))
            if isinstance(got, dict):
                problems += list(compare_docs(exp, got))
                notes.update(extra_keys(exp, got))
            elif got is not None:
                problems.append(("json", "top level is not an object"))

            if problems:
                failed.append(label)
                print("FAIL %s" % label)
                if cmd:
                    print("     command: %s" % " ".join(cmd))
                for field, desc in problems:
                    print("     %-34s %s" % (field, desc))
                if a.dump:
                    os.makedirs(a.dump, exist_ok=True)
                    base = os.path.join(a.dump, "case%03d" % ci)
                    with open(base + ".oracle.json", "w") as fh:
                        json.dump(exp, fh, indent=2)
                    if got is not None:
                        with open(base + ".qparity.json", "w") as fh:
                            json.dump(got, fh, indent=2)
            else:
                n_pass += 1
                if a.verbose:
                    print("ok   %s  bins differ: %d, fp32 differ: %d" % (
                        label, ec["bin_mismatch_count"], ec["fp32_mismatch_count"]))

    if notes:
        print("note: qparity emits keys the oracle does not check: %s" % ", ".join(sorted(notes)))
    # Guard against a vacuous run: say how many cases exercised each outcome.
    print("seed parity: %d/%d cases passed (%d seed, %d fixed-k, %d knobs, %d random, seed=%d) in %.1fs; "
          "oracle outcomes: %s" % (
              n_pass, len(cases), 2, len(FIXED_KS + EDGE_KS) * 4,
              sum(1 for c in cases if c["origin"] == "knobs"), a.cases, a.seed, time.time() - t0,
              ", ".join("%s %d" % kv for kv in kinds.items())))
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
