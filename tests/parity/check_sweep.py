#!/usr/bin/python3
"""Parity test of `qparity sweep`: its points against real PyTorch 1.13.1, its refined
boundaries against `qparity seed` and PyTorch, and its independence from the thread count.

  a. points: one sweep over k log-spaced 1e-3..1e3 on qnnpack and onednn, both observers, both
     weight qschemes, reduce_range off/on, weight patterns identity/dense, at --rows 4; a seeded
     random sample of its points (at least one of every outcome the sweep produced, then random
     points up to --points) is re-run in PyTorch (torch_seed_oracle.run_seed with full_bins):
     bin_mismatch_count, fp32_mismatch_count, max_abs_delta_q (max |fake-quant bin - int8 bin|
     over every element) and first_mismatch must equal PyTorch's; a refused point must be refused
     by PyTorch, and "agree" must mean PyTorch's paths agree. The sample must cover at least
     three outcomes of the sweep and the three PyTorch kinds (refused, agree, bins differ).
  b. --refine boundaries (several sweeps that have boundaries, some with an "agree" side): every
     boundary is refined, k_low and k_high are adjacent float32 values, the boundaries of a
     series chain the outcomes of its k ranges, and `qparity seed --k repr(k) ... --json` on each
     side gives an outcome label (computed from the seed JSON's diagnosis) equal to outcome_low /
     outcome_high, the two different; each side is also run in PyTorch: an "agree" side must
     agree there, a diverging side must diverge, and the mismatch counts must be PyTorch's.
  c. threads: one sweep of 64 points with --refine under --threads 1, 2 and 3 gives identical
     JSON documents apart from command_line.

Usage (Debian's Python, which has torch):
    /usr/bin/python3 tests/parity/check_sweep.py --qparity build/qparity [--seed 1] [--points 100]
Exit status 0 when everything matches (one summary line), 1 otherwise (every failure printed).
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_seed_oracle as oracle  # noqa: E402  (imports torch once)
import check_seed_parity as csp  # noqa: E402  (comparison helpers)

ROWS = 4
POINT_SWEEP = ["--k", "0.001:1000:61", "--log", "--backend", "qnnpack,onednn",
               "--observer", "fused,plain",
               "--weight-qscheme",
               "per_tensor_symmetric,per_tensor_affine,per_channel_symmetric,per_channel_affine",
               "--reduce-range", "off,on", "--weight-pattern", "identity,dense"]
# Sweeps with boundaries to refine; the last ones have "agree" on one side of some boundaries.
REFINE_SWEEPS = (
    ["--k", "0.005:0.05:8", "--log", "--backend", "qnnpack,onednn", "--observer", "fused"],
    ["--k", "0.005:0.05:8", "--log", "--backend", "qnnpack,onednn", "--observer", "fused",
     "--weight-pattern", "dense,mixed", "--reduce-range", "off,on"],
    ["--k", "0.005:0.05:8", "--log", "--backend", "qnnpack,onednn", "--observer", "fused",
     "--reduce-range", "on"],
    ["--k", "0.01:10:12", "--log", "--backend", "qnnpack", "--observer", "fused,plain",
     "--weight-qscheme", "per_tensor_affine", "--weight-pattern", "dense"],
    ["--k", "0.005:0.05:8", "--log", "--backend", "qnnpack,onednn", "--observer", "fused",
     "--weight-qscheme", "per_channel_symmetric", "--weight-pattern", "mixed"],
)
THREAD_SWEEP = ["--k", "0.004:0.04:16", "--log", "--backend", "qnnpack,onednn",
                "--observer", "fused,plain", "--weight-pattern", "identity,dense", "--refine"]
THREAD_COUNTS = (1, 2, 3)


class Checker:
    def __init__(self):
        self.failures = 0

    def fail(self, what, *details):
        self.failures += 1
        print("FAIL %s" % what)
        for d in details:
            print("     %s" % d)


def knobs_of(p):
    return {"weight_qscheme": p["weight_qscheme"], "reduce_range": bool(p["reduce_range"]),
            "weight_pattern": p["weight_pattern"]}


def config_label(p, k=None):
    return "k=%r backend=%s observer=%s weight_qscheme=%s reduce_range=%s weight_pattern=%s rows=%d" % (
        p["k"] if k is None else k, p["backend"], p["observer"], p["weight_qscheme"],
        "on" if p["reduce_range"] else "off", p["weight_pattern"], p["rows"])


def run_sweep(binary, args, json_path, timeout=300):
    cmd = [binary, "sweep", *args, "--json", json_path]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout)
    doc = None
    if proc.returncode in (0, 1):
        with open(json_path) as fh:
            doc = json.load(fh)
    return cmd, proc, doc


def seed_flags(p, k):
    flags = ["--k", repr(k), "--backend", p["backend"], "--observer", p["observer"],
             "--rows", str(p["rows"]), "--weight-qscheme", p["weight_qscheme"],
             "--weight-pattern", p["weight_pattern"]]
    return flags + (["--reduce-range"] if p["reduce_range"] else [])


def seed_outcome(binary, p, k, json_path):
    """Runs `qparity seed` for the configuration of sweep point p at k; returns (cmd, label, doc)
    with the label a sweep point would get: agree, class@point+..., or refused."""
    cmd = [binary, "seed", *seed_flags(p, k), "--json", json_path]
    if os.path.exists(json_path):
        os.remove(json_path)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=120)
    if proc.returncode == 2:
        return cmd, ("refused" if proc.stderr.strip() and not os.path.exists(json_path)
                     else "error(exit 2)"), None
    if proc.returncode not in (0, 1):
        return cmd, "error(exit %d): %s" % (proc.returncode, proc.stderr.strip()[-300:]), None
    with open(json_path) as fh:
        doc = json.load(fh)
    c = doc["compare"]
    if c["bin_mismatch_count"] == 0 and c["fp32_mismatch_count"] == 0:
        return cmd, "agree", doc
    labels = []
    for f in doc.get("diagnosis") or []:
        label = "%s@%s" % (f["class"], f["point"])
        if label not in labels:
            labels.append(label)
    if (doc.get("diagnosis_summary") or {}).get("unexplained_elements", 0) > 0:
        labels.append("unexplained")
    return cmd, "+".join(labels), doc


def oracle_kind(exp):
    if "error" in exp:
        return "refused"
    c = exp["compare"]
    return ("bins differ" if c["bin_mismatch_count"] else
            "fp32 only differs" if c["fp32_mismatch_count"] else "agree")


def is_f32(v):
    return float(np.float32(v)) == v


# ---- a. points against PyTorch ----------------------------------------------------------------

def check_points(binary, tmp, seed, n_points, chk):
    cmd, proc, doc = run_sweep(binary, [*POINT_SWEEP, "--rows", str(ROWS)],
                               os.path.join(tmp, "points.json"))
    if doc is None:
        chk.fail("a. sweep did not run", "command: %s" % " ".join(cmd),
                 "exit %d, stderr: %s" % (proc.returncode, proc.stderr.strip()))
        return {}
    points = doc["points"]
    expected_points = 2 * 2 * 4 * 2 * 2 * 61  # backends, observers, qschemes, reduce_range, patterns, k
    if len(points) != expected_points:
        chk.fail("a. sweep has %d points, expected %d" % (len(points), expected_points))
    want_rc = 1 if any(p["bin_mismatch_count"] or p["error"] for p in points) else 0
    if proc.returncode != want_rc:
        chk.fail("a. sweep exit code %d, expected %d" % (proc.returncode, want_rc))

    rng = random.Random(seed)
    by_outcome = {}
    for i, p in enumerate(points):
        by_outcome.setdefault(p["outcome"], []).append(i)
    chosen = [rng.choice(by_outcome[o]) for o in sorted(by_outcome)]
    rest = [i for i in range(len(points)) if i not in set(chosen)]
    chosen += rng.sample(rest, max(0, n_points - len(chosen)))
    chosen.sort()

    sweep_outcomes, kinds = {}, {}
    for i in chosen:
        p = points[i]
        label = config_label(p)
        problems = []
        if p["rows"] != ROWS:
            problems.append("rows %r, expected %d" % (p["rows"], ROWS))
        if not is_f32(p["k"]):
            problems.append("k %r is not a float32 value" % p["k"])
        exp = oracle.run_seed(p["k"], p["backend"], p["observer"], p["rows"], knobs_of(p),
                              full_bins=True)
        kind = oracle_kind(exp)
        kinds[kind] = kinds.get(kind, 0) + 1
        sweep_outcomes[p["outcome"]] = sweep_outcomes.get(p["outcome"], 0) + 1
        if kind == "refused":
            if p["outcome"] != "refused" or not p.get("error"):
                problems.append("PyTorch refuses it (%s) but the sweep's outcome is %r, error %r"
                                % (exp["error"], p["outcome"], p.get("error")))
        elif p["outcome"] == "refused":
            problems.append("the sweep refused it (%s) but PyTorch runs it" % p.get("error"))
        else:
            ec = exp["compare"]
            fq, i8 = exp["full_bins"]["fake_quant"], exp["full_bins"]["int8"]
            max_dq = int(np.abs(fq - i8).max())
            for key, want, fn in (("bin_mismatch_count", ec["bin_mismatch_count"], csp.cmp_exact_int),
                                  ("fp32_mismatch_count", ec["fp32_mismatch_count"], csp.cmp_exact_int),
                                  ("max_abs_delta_q", max_dq, csp.cmp_exact_int),
                                  ("first_mismatch", ec["first_mismatch"], csp.cmp_first)):
                d = fn(want, p.get(key))
                if d:
                    problems.append("%s: %s" % (key, d))
            if (p["outcome"] == "agree") != (kind == "agree"):
                problems.append("outcome %r but PyTorch: %s" % (p["outcome"], kind))
            if p.get("error") is not None:
                problems.append("error %r on a point PyTorch runs" % p["error"])
        if problems:
            chk.fail("a. point %s (sweep outcome %s)" % (label, p["outcome"]), *problems)

    if len(sweep_outcomes) < 3:
        chk.fail("a. vacuous sample: only %d sweep outcomes (%s)" % (
            len(sweep_outcomes), ", ".join(sweep_outcomes)))
    for kind in ("refused", "agree", "bins differ"):
        if not kinds.get(kind):
            chk.fail("a. vacuous sample: no point where PyTorch gives '%s'" % kind)
    return {"points": len(chosen), "outcomes": len(sweep_outcomes), "kinds": kinds}


# ---- b. refined boundaries ---------------------------------------------------------------------

def check_boundaries(binary, tmp, chk):
    n_boundaries, n_agree_sides, n_sweeps = 0, 0, 0
    for si, args in enumerate(REFINE_SWEEPS):
        cmd, proc, doc = run_sweep(binary, [*args, "--rows", str(ROWS), "--refine"],
                                   os.path.join(tmp, "refine%d.json" % si))
        if doc is None:
            chk.fail("b. sweep did not run", "command: %s" % " ".join(cmd),
                     "exit %d, stderr: %s" % (proc.returncode, proc.stderr.strip()))
            continue
        n_sweeps += 1
        boundaries = doc["summary"]["boundaries"]
        if not boundaries:
            chk.fail("b. no boundaries in %s" % " ".join(cmd))
            continue
        first_point = {}
        for p in doc["points"]:
            first_point.setdefault(p["series"], p)
        # The boundaries of a series chain its k ranges: range outcomes A, B, C give boundaries
        # A -> ... -> B -> ... -> C (intermediate outcomes allowed), in increasing k.
        for series, p0 in first_point.items():
            ranges = [r for r in doc["summary"]["ranges"] if r["series"] == series]
            bs = [b for b in boundaries if b["series"] == series]
            problems = []
            chain = [ranges[0]["outcome"]]
            last_k = None
            for b in bs:
                if b["outcome_low"] != chain[-1]:
                    problems.append("boundary at k %r starts from %r, the previous outcome is %r"
                                    % (b["k_low"], b["outcome_low"], chain[-1]))
                if last_k is not None and not b["k_low"] >= last_k:
                    problems.append("boundary at k %r is below the previous one (%r)"
                                    % (b["k_low"], last_k))
                last_k = b["k_high"]
                chain.append(b["outcome_high"])
            it = iter(chain)
            if not all(any(r["outcome"] == c for c in it) for r in ranges) or chain[-1] != ranges[-1]["outcome"]:
                problems.append("boundary chain %s does not pass through the range outcomes %s"
                                % (" -> ".join(chain), " -> ".join(r["outcome"] for r in ranges)))
            if problems:
                chk.fail("b. series %s of %s" % (series, " ".join(cmd)), *problems)

        for b in boundaries:
            n_boundaries += 1
            p0 = first_point.get(b["series"])
            where = "b. boundary %s k %r -> %r (%s)" % (b["series"], b["k_low"], b["k_high"],
                                                         " ".join(args))
            if p0 is None:
                chk.fail(where, "unknown series")
                continue
            problems = []
            if not b["refined"]:
                problems.append("not refined")
            lo32, hi32 = np.float32(b["k_low"]), np.float32(b["k_high"])
            if not (is_f32(b["k_low"]) and is_f32(b["k_high"])):
                problems.append("k_low / k_high are not float32 values")
            elif np.nextafter(lo32, np.float32(np.inf)) != hi32:
                problems.append("k_low %r and k_high %r are not adjacent float32 values "
                                "(next after k_low: %r)" % (b["k_low"], b["k_high"],
                                float(np.nextafter(lo32, np.float32(np.inf)))))
            if b["outcome_low"] == b["outcome_high"]:
                problems.append("outcome_low == outcome_high == %r" % b["outcome_low"])
            for side in ("low", "high"):
                k = b["k_" + side]
                want = b["outcome_" + side]
                seed_cmd, label, seed_doc = seed_outcome(binary, p0, k, os.path.join(tmp, "side.json"))
                if label != want:
                    problems.append("%s side: qparity seed gives %r, the boundary says %r (%s)"
                                    % (side, label, want, " ".join(seed_cmd)))
                exp = oracle.run_seed(k, p0["backend"], p0["observer"], p0["rows"], knobs_of(p0))
                kind = oracle_kind(exp)
                if want == "agree":
                    n_agree_sides += 1
                if (want == "agree") != (kind == "agree") or (want == "refused") != (kind == "refused"):
                    problems.append("%s side (k %r): outcome %r but PyTorch: %s"
                                    % (side, k, want, kind))
                elif seed_doc is not None and kind != "refused":
                    for key in ("bin_mismatch_count", "fp32_mismatch_count", "first_mismatch"):
                        fn = csp.cmp_first if key == "first_mismatch" else csp.cmp_exact_int
                        d = fn(exp["compare"][key], seed_doc["compare"].get(key))
                        if d:
                            problems.append("%s side (k %r) %s vs PyTorch: %s" % (side, k, key, d))
            if problems:
                chk.fail(where, *problems)
    if n_agree_sides == 0:
        chk.fail("b. vacuous: no boundary has an 'agree' side")
    return {"sweeps": n_sweeps, "boundaries": n_boundaries, "agree_sides": n_agree_sides}


# ---- c. thread determinism ---------------------------------------------------------------------

def check_threads(binary, tmp, chk):
    docs = {}
    for t in THREAD_COUNTS:
        cmd, proc, doc = run_sweep(binary, [*THREAD_SWEEP, "--rows", str(ROWS), "--threads", str(t)],
                                   os.path.join(tmp, "threads%d.json" % t))
        if doc is None:
            chk.fail("c. sweep did not run", "command: %s" % " ".join(cmd),
                     "exit %d, stderr: %s" % (proc.returncode, proc.stderr.strip()))
            return {}
        doc.pop("command_line", None)
        docs[t] = doc
    ref = docs[THREAD_COUNTS[0]]
    if len(ref["points"]) < 30 or not ref["summary"]["boundaries"]:
        chk.fail("c. vacuous: %d points, %d boundaries" % (len(ref["points"]),
                                                          len(ref["summary"]["boundaries"])))
    for t in THREAD_COUNTS[1:]:
        if docs[t] != ref:
            diffs = []
            for key in sorted(set(ref) | set(docs[t])):
                if ref.get(key) != docs[t].get(key):
                    diffs.append("key %r differs" % key)
            for i, (a, b) in enumerate(zip(ref["points"], docs[t]["points"])):
                if a != b:
                    diffs.append("first differing point #%d: %s vs %s" % (i, json.dumps(a), json.dumps(b)))
                    break
            chk.fail("c. --threads %d differs from --threads %d" % (t, THREAD_COUNTS[0]), *diffs)
    return {"points": len(ref["points"]), "boundaries": len(ref["summary"]["boundaries"])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="qparity sweep vs real PyTorch and itself")
    ap.add_argument("--qparity", required=True, help="path to the qparity binary")
    ap.add_argument("--seed", type=int, default=1, help="seed of the point sample (default 1)")
    ap.add_argument("--points", type=int, default=100, help="points checked in part a (default 100)")
    a = ap.parse_args(argv)
    binary = os.path.abspath(a.qparity)
    if not os.access(binary, os.X_OK):
        print("error: %s is not an executable file" % binary, file=sys.stderr)
        return 2
    if a.points < 20:
        print("error: --points must be at least 20", file=sys.stderr)
        return 2

    chk = Checker()
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="qparity-sweep-") as tmp:
        sa = check_points(binary, tmp, a.seed, a.points, chk)
        sb = check_boundaries(binary, tmp, chk)
        sc = check_threads(binary, tmp, chk)
    summary = (
        "sweep parity: %s in %.1fs; a. %d points vs PyTorch (%d sweep outcomes; PyTorch: %s, seed=%d); "
        "b. %d refined boundaries in %d sweeps (%d agree sides) vs seed and PyTorch; "
        "c. %d points / %d boundaries identical with --threads %s" % (
            "all passed" if not chk.failures else "%d FAILURES" % chk.failures, time.time() - t0,
            sa.get("points", 0), sa.get("outcomes", 0),
            ", ".join("%s %d" % kv for kv in sorted(sa.get("kinds", {}).items())), a.seed,
            sb["boundaries"], sb["sweeps"], sb["agree_sides"], sc.get("points", 0),
            sc.get("boundaries", 0), "/".join(map(str, THREAD_COUNTS))))
    print(summary)
    return 0 if not chk.failures else 1


if __name__ == "__main__":
    sys.exit(main())
