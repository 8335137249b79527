#!/usr/bin/python3
"""Model parity: `qparity model` against real PyTorch 1.13.1 on generated models.

Generates the models with make_models.py into a cache outside the checkout (keyed by the
generator's sha256 and this CPU's ISA flags; a model missing from the cache is generated and added
to it, so enabling one more model costs only that model), then for every model x engine x QAT
variant runs `qparity model QAT INT8 --input input.pt --backend ENGINE --json ...` and asserts:
  - the reference check ran and every IR value of every layer, on both paths, is bit-identical to
    what libtorch computed (`reference.*.elements_differing == 0`, `output_exact`);
  - the emulated final outputs equal make_models.py's Python run of the saved files, to the
    float32 bit (`outputs.fake_quant` against qat[_observing]_output_bits, `outputs.int8` against
    int8_output_bits);
  - the per-layer comparison is not vacuous (layers listed, elements counted);
  - a layer named like a layer of the int8 model (a module, a QFunctional, an FX node) has that
    layer's output shape (expected.json's int8_layer_shapes), so no two ops share one name;
  - the diagnosis explains every mismatch the layers create by themselves, and (QAT variant, with
    --check-diagnosis) comes out identical when its re-runs use libtorch's own quantized conv /
    linear instead of qparity's: local counts, findings and impact;
  - FX models only: the layers are named as in the int8 GraphModule (call_module target,
    call_function / call_method node name): every reported name is one of expected.json's
    int8_layers, in the same order.
Exit 0 when all pass, 1 with one line per failure.

    check_model_parity.py --qparity build/qparity                      # the default list
    check_model_parity.py --qparity build/qparity --models ops_net,fx_convnet --engines qnnpack
    check_model_parity.py --qparity build/qparity --models all         # every model make_models.py knows
"""
import argparse
import fcntl
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GENERATOR = os.path.join(HERE, "make_models.py")
# The models the suite runs by default: those qparity passes today (all four runs each). The
# others of make_models.MODELS (run them with --models NAME or --models all) wait for the
# frontend: fx_convnet and fx_resnet18 (FX: the final dequantize must be named as its FX node,
# dequantize_27 / dequantize_32). Add a model here once it passes.
DEFAULT_MODELS = ["convnet_basic", "residual_net", "ops_net", "pool_act_net", "resnet18", "mobilenet_v2",
                  "mobilenet_v3", "shufflenet_v2", "fx_convnet", "fx_resnet18"]
ENGINES = ["qnnpack", "onednn"]
VARIANTS = ["qat", "qat_observing"]


def all_models():
    """Every model make_models.py can generate (importing it loads torch: only done when asked)."""
    sys.path.insert(0, HERE)
    import make_models
    return list(make_models.MODELS)


def cpu_key():
    flags = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags = " ".join(sorted(x for x in line.split(":")[1].split() if x.startswith(("avx", "fma", "sse"))))
                break
    return hashlib.sha256(flags.encode()).hexdigest()[:12]


def write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def models_dir(models, jobs):
    """The cache directory holding every model x engine asked for; generates the missing ones.

    Each model x engine is generated in its own process and is byte-identical whatever else was
    generated with it, so the cache grows model by model: missing models are generated into a
    temporary directory beside it and moved in, and manifest.json lists every entry present.
    A lock file serialises concurrent runs."""
    with open(GENERATOR, "rb") as f:
        key = hashlib.sha256(f.read()).hexdigest()[:12] + "-" + cpu_key()
    root = os.environ.get("QPARITY_MODEL_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "qparity", "models"))
    out = os.path.join(root, key)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(root, key + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        missing = [m for m in models
                   if not all(os.path.exists(os.path.join(out, m, e, "expected.json")) for e in ENGINES)]
        if missing:
            start = time.monotonic()
            tmp = tempfile.mkdtemp(dir=root)
            try:
                subprocess.run([sys.executable, GENERATOR, "--out", tmp, "--models", ",".join(missing),
                                "--engines", ",".join(ENGINES), "--jobs", str(jobs)], check=True)
                generated = json.load(open(os.path.join(tmp, "manifest.json")))
                for model in missing:
                    shutil.rmtree(os.path.join(out, model), ignore_errors=True)
                    os.replace(os.path.join(tmp, model), os.path.join(out, model))
                manifest_path = os.path.join(out, "manifest.json")
                manifest = json.load(open(manifest_path)) if os.path.exists(manifest_path) else dict(generated, entries=[])
                entries = [e for e in manifest["entries"] if e["model"] not in missing] + generated["entries"]
                manifest.update({k: v for k, v in generated.items() if k not in ("models", "entries")})
                manifest["models"] = sorted({e["model"] for e in entries})
                manifest["entries"] = sorted(entries, key=lambda e: (e["model"], e["engine"]))
                write_json(manifest_path, manifest)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            print(f"generated {','.join(missing)} into {out} in {time.monotonic() - start:.0f} s", flush=True)
    return out


def bits(values):
    return [struct.unpack("<I", struct.pack("<f", v))[0] for v in values]


def check_fx_names(label, names, expected, failures):
    """Every layer name qparity reports must be an FX node name of the int8 GraphModule, in order."""
    order = {name: i for i, name in enumerate(expected["int8_layers"])}
    unknown = [n for n in names if n not in order]
    if unknown:
        failures.append(f"{label}: layer names not in the int8 GraphModule: {', '.join(unknown[:8])}"
                        f"{' ...' if len(unknown) > 8 else ''} (FX names: {', '.join(expected['int8_layers'][:8])} ...)")
        return
    positions = [order[n] for n in names]
    if positions != sorted(positions) or len(set(positions)) != len(positions):
        failures.append(f"{label}: layers not in the int8 GraphModule's order: {', '.join(names)}")


def check_layer_shapes(label, layers, expected, failures):
    """A reported layer named like a layer of the int8 model (a module, a QFunctional, an FX node) must
    have that layer's output shape: two ops sharing one name (say a module `relu6` and a functional
    F.relu6 in the model's own forward) would otherwise pass as one layer."""
    shapes = {}
    for name, shape in zip(expected["int8_layers"], expected.get("int8_layer_shapes", [])):
        shapes.setdefault(name, []).append(shape)
    for layer in layers:
        if layer["name"] in shapes and layer["shape"] not in shapes[layer["name"]]:
            failures.append(f"{label}: layer {layer['name']} is reported with shape {layer['shape']}, but the int8 "
                            f"model's {layer['name']} outputs {shapes[layer['name']][0]} (two ops under one name?)")


def check_convert(qparity, d, engine, label, report, expected, failures):
    """Eager models, QAT saved as converted (observers off): qparity's convert() must equal the real
    int8 model to the bit, and the one-file form (no INT8.pt) must give the real int8 outputs."""
    convert = report.get("convert", {})
    if convert.get("mode") != "checked" or convert.get("differences"):
        failures.append(f"{label}: qparity's convert() differs from int8.pt: {convert}")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "one-file.json")
        run = subprocess.run([qparity, "model", os.path.join(d, "qat.pt"), "--input", os.path.join(d, "input.pt"),
                              "--backend", engine, "--json", path], capture_output=True, text=True)
        if run.returncode not in (0, 1):
            failures.append(f"{label}: one-file form: exit {run.returncode}: {run.stderr.strip()}")
            return
        r = json.load(open(path))
    if r["convert"]["mode"] != "derived" or r["models"]["int8"] is not None:
        failures.append(f"{label}: one-file form: int8 path not derived by convert(): {r['convert']}")
    if not r["reference"]["qat"]["exact"] or r["reference"]["int8"] is not None:
        failures.append(f"{label}: one-file form: QAT path not bit-exact to libtorch")
    if bits(r["outputs"]["int8"]) != expected["int8_output_bits"]:
        failures.append(f"{label}: one-file form: the int8 outputs of qparity's convert() differ from int8.pt's")


def check_diagnosis(label, report, checked, failures):
    """The diagnosis ran, its findings explain every mismatch the layers create by themselves, and
    (checked: --check-diagnosis) the same diagnosis with libtorch's own quantized conv / linear in
    every re-run came out identical: every local count, finding and impact."""
    d = report["summary"].get("diagnosis", {})
    if "layers_creating_error" not in d:
        failures.append(f"{label}: no diagnosis: {d}")
        return
    local = sum(l["local"].get("bin_mismatch_count", 0) for l in report["layers"])
    if local != d["local_bin_mismatches"] or d["explained_elements"] < 0.99 * local:
        failures.append(f"{label}: diagnosis explains {d['explained_elements']} of {local} local mismatches")
    if any(f["explains_elements"] <= 0 for f in report["diagnosis"]):
        failures.append(f"{label}: a finding explains nothing")
    if not checked:
        return
    c = d.get("check")
    if c is None or not c["identical"] or c["ops_ran"] == 0:
        failures.append(f"{label}: the diagnosis with libtorch's int8 kernels differs: {c}")


def check(qparity, folder, model, engine, variant, failures):
    d = os.path.join(folder, model, engine)
    expected = json.load(open(os.path.join(d, "expected.json")))
    label = f"{model}/{engine}/{variant}"
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        report_path = os.path.join(tmp, "r.json")
        # The plain QAT variant also re-runs the diagnosis with libtorch's own int8 conv / linear.
        extra = ["--check-diagnosis"] if variant == "qat" else []
        run = subprocess.run([qparity, "model", os.path.join(d, variant + ".pt"), os.path.join(d, "int8.pt"),
                              "--input", os.path.join(d, "input.pt"), "--backend", engine, "--json", report_path]
                             + extra, capture_output=True, text=True)
        if run.returncode not in (0, 1):
            failures.append(f"{label}: exit {run.returncode}: {run.stderr.strip()}")
            print(f"{label}: exit {run.returncode} ({time.monotonic() - start:.1f} s)", flush=True)
            return
        r = json.load(open(report_path))
    ref = r["reference"]
    if "skipped" in ref:
        failures.append(f"{label}: reference skipped: {ref['skipped']}")
        return
    for path in ("qat", "int8"):
        p = ref[path]
        if p["elements"] == 0:
            failures.append(f"{label}: {path} reference checked nothing")
        if p["elements_differing"] != 0 or not p["output_exact"]:
            bad = [l for l in p["layers"] if l["elements_differing"]]
            failures.append(f"{label}: {path} path not bit-exact: {p['elements_differing']} elements in "
                            f"{len(bad)} layers ({', '.join(l['name'] for l in bad[:6])}); first layer "
                            f"{bad[0]['name'] if bad else '?'}: {bad[0].get('first_difference', '') if bad else ''}")
    if bits(r["outputs"]["fake_quant"]) != expected[variant + "_output_bits"]:
        failures.append(f"{label}: fake-quant final output differs from the Python run")
    if bits(r["outputs"]["int8"]) != expected["int8_output_bits"]:
        failures.append(f"{label}: int8 final output differs from the Python run")
    if len(r["layers"]) < 4 or sum(l["compare"]["numel"] for l in r["layers"]) == 0:
        failures.append(f"{label}: the layer table is vacuous")
    check_layer_shapes(label, r["layers"], expected, failures)
    check_diagnosis(label, r, variant == "qat", failures)
    if expected.get("mode") != "fx" and variant == "qat":
        check_convert(qparity, d, engine, label, r, expected, failures)
    if expected.get("mode") == "fx":
        check_fx_names(label, [l["name"] for l in r["layers"]], expected, failures)
    print(f"{label}: {len(r['layers'])} layers, reference {ref['qat']['elements']} + {ref['int8']['elements']} "
          f"values, first divergent {r['summary']['first_divergent_layer']} ({time.monotonic() - start:.1f} s)",
          flush=True)


THREAD_MODELS = ("ops_net", "pool_act_net")


def check_threads(qparity, folder, model, engine, failures):
    """With 2 PyTorch threads emulated, both paths stay bit-exact to libtorch (which the reference
    check runs with 2 threads too), and qparity's own --threads changes nothing in the report."""
    d = os.path.join(folder, model, engine)
    label = f"{model}/{engine}/torch-threads=2"
    reports = []
    with tempfile.TemporaryDirectory() as tmp:
        for threads in ("1", "2"):
            report_path = os.path.join(tmp, f"r{threads}.json")
            run = subprocess.run([qparity, "model", os.path.join(d, "qat.pt"), os.path.join(d, "int8.pt"),
                                  "--input", os.path.join(d, "input.pt"), "--backend", engine, "--torch-threads", "2",
                                  "--threads", threads, "--json", report_path], capture_output=True, text=True)
            if run.returncode not in (0, 1):
                failures.append(f"{label}: exit {run.returncode}: {run.stderr.strip()}")
                return
            reports.append(json.load(open(report_path)))
    for path in ("qat", "int8"):
        p = reports[0]["reference"][path]
        if p["elements"] == 0 or p["elements_differing"] != 0 or not p["output_exact"]:
            failures.append(f"{label}: {path} path not bit-exact to libtorch with 2 threads")
    same = all(reports[0][key] == reports[1][key] for key in ("layers", "outputs", "summary"))
    if not same:
        failures.append(f"{label}: the report depends on qparity's --threads")
    print(f"{label}: {'exact' if not failures else 'see failures'}; --threads 1 and 2 "
          f"{'agree' if same else 'DIFFER'}", flush=True)


def parse_list(text, allowed, what):
    items = [item for item in text.split(",") if item]
    unknown = [item for item in items if item not in allowed]
    if unknown or not items:
        raise SystemExit(f"unknown {what}: {','.join(unknown)} (choose from {','.join(allowed)})")
    return items


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qparity", required=True)
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS),
                    help="comma-separated models of make_models.py, or 'all' (default: %(default)s)")
    ap.add_argument("--engines", default=",".join(ENGINES), help="subset of %(default)s to run (all are generated)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="subset of %(default)s")
    ap.add_argument("--jobs", type=int, default=2, help="generator processes when the cache misses (default 2)")
    args = ap.parse_args()
    known = all_models()
    models = known if args.models == "all" else parse_list(args.models, known, "model")
    engines = parse_list(args.engines, ENGINES, "engine")
    variants = parse_list(args.variants, VARIANTS, "variant")
    start = time.monotonic()
    folder = models_dir(models, args.jobs)
    failures = []
    for model in models:
        for engine in engines:
            for variant in variants:
                check(args.qparity, folder, model, engine, variant, failures)
        if model in THREAD_MODELS:
            for engine in engines:
                check_threads(args.qparity, folder, model, engine, failures)
    for f in failures:
        print("FAIL", f)
    runs = len(models) * len(engines) * len(variants)
    print(f"{'PASS' if not failures else 'FAIL'}: model parity, {runs} runs, {time.monotonic() - start:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
