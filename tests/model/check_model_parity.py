#!/usr/bin/python3
"""Model parity: `qparity model` against real PyTorch 1.13.1 on generated models.

Generates the models with make_models.py into a cache outside the checkout (keyed by the
generator's sha256 and this CPU's ISA flags), then for every model x engine x QAT variant runs
`qparity model QAT INT8 --input input.pt --backend ENGINE --json ...` and asserts:
  - the reference check ran and every IR value of every layer, on both paths, is bit-identical to
    what libtorch computed (`reference.*.elements_differing == 0`, `output_exact`);
  - the emulated final outputs equal make_models.py's Python run of the saved files, to the
    float32 bit (`outputs.fake_quant` against qat[_observing]_output_bits, `outputs.int8` against
    int8_output_bits);
  - the per-layer comparison is not vacuous (layers listed, elements counted).
Exit 0 when all pass, 1 with one line per failure.
"""
import argparse
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
GENERATOR = os.path.join(HERE, "make_models.py")
MODELS = ["convnet_basic", "residual_net", "resnet18", "mobilenet_v2"]
ENGINES = ["qnnpack", "onednn"]


def cpu_key():
    flags = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags = " ".join(sorted(x for x in line.split(":")[1].split() if x.startswith(("avx", "fma", "sse"))))
                break
    return hashlib.sha256(flags.encode()).hexdigest()[:12]


def models_dir(models):
    with open(GENERATOR, "rb") as f:
        key = hashlib.sha256(f.read()).hexdigest()[:12] + "-" + cpu_key()
    root = os.environ.get("QPARITY_MODEL_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "qparity", "models"))
    out = os.path.join(root, key)
    if not os.path.exists(os.path.join(out, "manifest.json")):
        os.makedirs(root, exist_ok=True)
        tmp = tempfile.mkdtemp(dir=root)
        subprocess.run([sys.executable, GENERATOR, "--out", tmp, "--models", ",".join(models),
                        "--engines", ",".join(ENGINES)], check=True)
        os.replace(tmp, out) if not os.path.exists(out) else None
    return out


def bits(values):
    return [struct.unpack("<I", struct.pack("<f", v))[0] for v in values]


def check(qparity, folder, model, engine, variant, failures):
    d = os.path.join(folder, model, engine)
    expected = json.load(open(os.path.join(d, "expected.json")))
    with tempfile.TemporaryDirectory() as tmp:
        report_path = os.path.join(tmp, "r.json")
        run = subprocess.run([qparity, "model", os.path.join(d, variant + ".pt"), os.path.join(d, "int8.pt"),
                              "--input", os.path.join(d, "input.pt"), "--backend", engine, "--json", report_path],
                             capture_output=True, text=True)
        label = f"{model}/{engine}/{variant}"
        if run.returncode not in (0, 1):
            failures.append(f"{label}: exit {run.returncode}: {run.stderr.strip()}")
            return
        r = json.load(open(report_path))
    ref = r["reference"]
    for path in ("qat", "int8"):
        if "skipped" in ref:
            failures.append(f"{label}: reference skipped: {ref['skipped']}")
            return
        p = ref[path]
        if p["elements"] == 0:
            failures.append(f"{label}: {path} reference checked nothing")
        if p["elements_differing"] != 0 or not p["output_exact"]:
            bad = [l for l in p["layers"] if l["elements_differing"]]
            failures.append(f"{label}: {path} path not bit-exact: {p['elements_differing']} elements; first layer "
                            f"{bad[0]['name'] if bad else '?'}: {bad[0].get('first_difference', '') if bad else ''}")
    if bits(r["outputs"]["fake_quant"]) != expected[variant + "_output_bits"]:
        failures.append(f"{label}: fake-quant final output differs from the Python run")
    if bits(r["outputs"]["int8"]) != expected["int8_output_bits"]:
        failures.append(f"{label}: int8 final output differs from the Python run")
    if len(r["layers"]) < 4 or sum(l["compare"]["numel"] for l in r["layers"]) == 0:
        failures.append(f"{label}: the layer table is vacuous")
    print(f"{label}: {len(r['layers'])} layers, reference {ref['qat']['elements']} + {ref['int8']['elements']} "
          f"values, first divergent {r['summary']['first_divergent_layer']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--qparity", required=True)
    ap.add_argument("--models", default=",".join(MODELS))
    args = ap.parse_args()
    models = args.models.split(",")
    folder = models_dir(MODELS)
    failures = []
    for model in models:
        for engine in ENGINES:
            for variant in ("qat", "qat_observing"):
                check(args.qparity, folder, model, engine, variant, failures)
    for f in failures:
        print("FAIL", f)
    print(f"{'PASS' if not failures else 'FAIL'}: model parity, {len(models) * len(ENGINES) * 2} runs")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
