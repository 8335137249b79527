#!/usr/bin/python3
"""Diagnosis and fixes of `qparity seed` checked against real PyTorch 1.13.1.

For configurations whose causes differ (found with the emulator, each confirmed here with the
real library) this test checks that
  1. qparity's diagnosis has the expected classes at the expected points, explains every
     mismatching element, and that what each finding claims is true of real PyTorch: the
     point's qparams really differ between the QAT model and the converted one (grid / float-
     only / threshold findings), the fake-quant scale really is the 6.1e-5 floor (threshold),
     or every qparam agrees and the bins still differ (requantization findings);
  2. every fix qparity reports is re-run here in real PyTorch with the same change: a fix
     marked verified reaches parity in PyTorch too, one marked not verified does not, and a
     refused change is refused by PyTorch as well;
  3. no unverified change appears under "FIX" in the console output.

Usage: /usr/bin/python3 check_diagnosis.py --qparity PATH
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_seed_oracle as oracle  # noqa: E402

F32 = np.float32
K_DENSE, OMAX_DENSE = 0.7, 0.4
DENSE_CONSISTENT = {
    "--weight-pattern": "dense", "--weight-quant-min": "-127",
    "--output-observer-max": repr(OMAX_DENSE),
    "--output-scale": repr(float(F32(F32(OMAX_DENSE) / F32(255)))),
    "--weight-scale": repr(float(F32(F32(K_DENSE) / F32(127)))),
}

ODD_ZERO_POINT = {"--output-observer-min": repr(-3 * 0.5 / 255.0),
                  "--output-observer-max": repr(-3 * 0.5 / 255.0 + 0.5), "--weight-quant-min": "-127"}

# (name, k, backend, observer, extra flags, expected (class, point) findings in order)
CONFIGS = [
    ("seed default", 1.0, "qnnpack", "fused", {}, [("grid_mismatch", "weight")]),
    ("seed default on onednn", 1.0, "onednn", "fused", {}, [("grid_mismatch", "weight")]),
    ("plain FakeQuantize, k=1", 1.0, "qnnpack", "plain", {}, []),
    ("small k hits the threshold", 0.01, "qnnpack", "fused", {},
     [("threshold_clamp", "weight"), ("threshold_clamp", "output")]),
    ("float-only scale difference", 0.3, "qnnpack", "plain", {}, [("float_only", "output")]),
    ("reduce_range with hand-set scales", 1.0, "onednn", "plain", {"--reduce-range": True},
     [("grid_mismatch", "input"), ("grid_mismatch", "output")]),
    ("consistent grids, dense weights", K_DENSE, "qnnpack", "plain", DENSE_CONSISTENT,
     [("requantization_precision", "requantization")]),
    ("affine weights: no divergence", 1.0, "qnnpack", "fused",
     {"--weight-qscheme": "per_tensor_affine"}, []),
    # An odd output zero point (3): onednn adds it before rounding, so the .5 ties the fake-quant
    # path rounds to even land one bin up; qnnpack rounds first and differs only where its
    # multiplier chain crosses a boundary.
    ("zero point before rounding (onednn)", 0.25, "onednn", "fused", ODD_ZERO_POINT,
     [("rounding", "requantization")]),
    ("zero point after rounding (qnnpack)", 0.25, "qnnpack", "fused", ODD_ZERO_POINT,
     [("requantization_precision", "requantization")]),
    ("per-channel symmetric weights", 1.0, "onednn", "fused",
     {"--weight-qscheme": "per_channel_symmetric", "--weight-pattern": "mixed"},
     [("grid_mismatch", "weight")]),
]

FLAG_TO_KNOB = {
    "--weight-qscheme": ("weight_qscheme", str), "--weight-quant-min": ("weight_quant_min", int),
    "--reduce-range": ("reduce_range", bool), "--weight-pattern": ("weight_pattern", str),
    "--weight-observer-max": ("weight_observer_max", float),
    "--output-observer-max": ("output_observer_max", float),
    "--output-observer-min": ("output_observer_min", float),
    "--input-scale": ("input_scale", float), "--weight-scale": ("weight_scale", float),
    "--output-scale": ("output_scale", float),
}


def flags_to_knobs(flags):
    knobs = {}
    for flag, value in flags.items():
        if flag in FLAG_TO_KNOB:
            name, kind = FLAG_TO_KNOB[flag]
            knobs[name] = bool(value) if kind is bool else kind(value)
    return knobs


def run_qparity(binary, k, backend, observer, flags, tmp):
    path = os.path.join(tmp, "diag.json")
    cmd = [binary, "seed", "--k", repr(k), "--backend", backend, "--observer", observer,
           "--rows", "2", "--json", path]
    for flag, value in flags.items():
        cmd += [flag] if value is True else [flag, str(value)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode not in (0, 1):
        raise RuntimeError("qparity failed (%d): %s" % (proc.returncode, proc.stderr))
    with open(path) as f:
        return json.load(f), proc.stdout, cmd


def point_qparams(doc, path, point):
    p = doc["paths"][path]
    return F32(p[point + "_scale"]), p[point + "_zero_point"]


def check_config(binary, cfg, tmp, problems):
    name, k, backend, observer, flags, expected = cfg
    doc, console, cmd = run_qparity(binary, k, backend, observer, flags, tmp)
    torch_doc = oracle.run_seed(k, backend, observer, 2, flags_to_knobs(flags))
    say = lambda msg: problems.append("%s: %s\n     command: %s" % (name, msg, " ".join(cmd)))

    got = [(f["class"], f["point"]) for f in doc["diagnosis"]]
    if got != expected:
        say("diagnosis %s, expected %s" % (got, expected))
    summary = doc["diagnosis_summary"]
    tc = torch_doc["compare"]
    if summary["unexplained_elements"] != 0:
        say("%d elements unexplained" % summary["unexplained_elements"])
    if summary["paths_agree"] != (tc["bin_mismatch_count"] == 0 and tc["fp32_mismatch_count"] == 0):
        say("paths_agree %s but PyTorch has %d bin / %d fp32 mismatches"
            % (summary["paths_agree"], tc["bin_mismatch_count"], tc["fp32_mismatch_count"]))
    if summary["paths_agree"] and doc["diagnosis"]:
        say("the paths agree but a cause was reported")
    explained = sum(f["explains_elements"] for f in doc["diagnosis"])
    if explained != summary["mismatched_elements"]:
        say("findings explain %d of %d elements" % (explained, summary["mismatched_elements"]))

    # What each finding claims, checked on the real models' qparams.
    for f in doc["diagnosis"]:
        cls, point = f["class"], f["point"]
        if point == "requantization":
            # Grids that differ must be those qparity found to change no output.
            harmless = summary["qparams_differ_without_effect"]
            for p in ("input", "weight", "output"):
                if p in harmless:
                    continue
                if point_qparams(torch_doc, "fake_quant", p) != point_qparams(torch_doc, "int8", p):
                    say("a requantization finding, but PyTorch's %s qparams differ" % p)
            if tc["bin_mismatch_count"] == 0:
                say("a requantization finding, but PyTorch's bins agree")
            continue
        fq, q8 = point_qparams(torch_doc, "fake_quant", point), point_qparams(torch_doc, "int8", point)
        if fq == q8 and point != "input":
            say("%s finding at %s, but PyTorch uses the same qparams %s in both" % (cls, point, fq))
        if cls == "float_only":
            if tc["bin_mismatch_count"] != 0:
                say("float_only, but PyTorch's bins differ")
            ulps = abs(int(fq[0].view(np.int32)) - int(q8[0].view(np.int32)))
            if not (0 < ulps <= 4):
                say("float_only, but the %s scales are %d ulp apart in PyTorch" % (point, ulps))
        if cls == "threshold_clamp" and fq[0] != F32(6.1e-5):
            say("threshold at %s, but PyTorch's fake-quant scale is %r" % (point, float(fq[0])))

    # Every fix, re-run in real PyTorch.
    float_only = tc["bin_mismatch_count"] == 0
    for fix in doc["fixes"]:
        apply = fix["apply"]
        fixed_observer = apply.get("--observer", observer)
        fixed_backend = apply.get("--backend", backend)
        knobs = flags_to_knobs({**flags, **apply})
        if fixed_backend not in oracle.ENGINES:
            continue  # fbgemm is emulated only: Debian's PyTorch cannot re-run this fix
        rerun = oracle.run_seed(k, fixed_backend, fixed_observer, 2, knobs)
        if "error" in rerun:
            if fix["verified_parity"] or fix["error"] is None:
                say("fix '%s': PyTorch refuses it (%s) but qparity says %s"
                    % (fix["change"], rerun["error"], fix))
            continue
        rc = rerun["compare"]
        torch_parity = rc["bin_mismatch_count"] == 0 and (not float_only or rc["fp32_mismatch_count"] == 0)
        if torch_parity != fix["verified_parity"]:
            say("fix '%s': verified_parity %s, but in PyTorch %d bins / %d floats differ"
                % (fix["change"], fix["verified_parity"], rc["bin_mismatch_count"],
                   rc["fp32_mismatch_count"]))
        listed = ("FIX  " + fix["change"]) in console
        if listed != fix["verified_parity"]:
            say("fix '%s' (verified %s) is %s under FIX in the console"
                % (fix["change"], fix["verified_parity"], "listed" if listed else "not listed"))
    return doc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--qparity", required=True)
    a = ap.parse_args()
    binary = os.path.abspath(a.qparity)
    problems = []
    verified_seed_fixes = 0
    with tempfile.TemporaryDirectory(prefix="qparity-diag-") as tmp:
        for cfg in CONFIGS:
            doc = check_config(binary, cfg, tmp, problems)
            if cfg[0] == "seed default":
                verified_seed_fixes = sum(f["verified_parity"] for f in doc["fixes"])
            print("%-40s %s; %d fixes (%d verified)" % (
                cfg[0], [f["class"] + "@" + f["point"] for f in doc["diagnosis"]] or "paths agree",
                len(doc["fixes"]), sum(f["verified_parity"] for f in doc["fixes"])))
    if verified_seed_fixes == 0:
        problems.append("the seed default has no verified fix")
    for p in problems:
        print("FAIL " + p)
    print("diagnosis parity: %d configurations, %d problems" % (len(CONFIGS), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
