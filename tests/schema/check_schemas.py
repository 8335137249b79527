#!/usr/bin/python3
"""Every JSON document the CLI emits validates against its schema (docs/schema/*.schema.json),
checked with the jsonschema library (Debian python3-jsonschema), not by hand.

Runs `qparity seed`, `explain` and `sweep` in configurations that exercise every optional part
of the documents (diagnosis on and off, agreeing and diverging paths, every divergence class the
seed family reaches, fixes that are refused, budgets, refined sweeps with refused points), and
checks that a few deliberately broken documents are rejected, so the schemas are not vacuous.

With --model-documents (or --models DIR) it also runs `qparity model` on the generated
convnet_basic model (qnnpack): with and without the reference check, from .pt, .npy and
--input-shape, with budgets, with observers still enabled. --models names a make_models.py output
directory; without it the models come from the cache (tests/cli/model_fixtures.py).

Usage: /usr/bin/python3 check_schemas.py --qparity PATH [--model-documents] [--models DIR]
"""
import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile

import jsonschema

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMAS = os.path.join(HERE, "..", "..", "docs", "schema")

SEED_RUNS = [
    [],
    ["--no-diagnosis"],
    ["--observer", "plain"],
    ["--k", "0.01", "--backend", "qnnpack"],
    ["--k", "0.3", "--observer", "plain", "--backend", "onednn"],
    ["--k", "0.005", "--backend", "onednn"],
    ["--reduce-range", "--observer", "plain", "--fail-on", "max-dq=0,error-mean=1e-3"],
    ["--weight-pattern", "dense", "--weight-quant-min", "-127", "--observer", "plain",
     "--k", "0.7", "--output-observer-max", "0.4", "--output-scale", "0.0015686274273321033",
     "--weight-scale", "0.005511811003088951", "--backend", "qnnpack"],
    ["--weight-qscheme", "per_tensor_affine", "--weight-observer-max", "2", "--input-scale", "0.004"],
    ["--weight-qscheme", "per_channel_symmetric", "--weight-pattern", "mixed", "--backend", "onednn"],
    ["--k", "0.25", "--backend", "onednn", "--output-observer-min", "-0.0058823529411764705",
     "--output-observer-max", "0.49411764705882355", "--weight-quant-min", "-127"],
]
EXPLAIN_RUNS = [[], ["--index", "0,1,0,200"], ["--observer", "plain", "--index", "0,0,0,0"]]
SWEEP_RUNS = [
    ["--k", "0.001:1000:9", "--log", "--backend", "qnnpack,onednn", "--observer", "fused,plain"],
    ["--k", "0.005:0.05:4", "--log", "--refine", "--backend", "onednn",
     "--weight-qscheme", "per_tensor_symmetric,per_tensor_affine", "--fail-on", "bin-mismatch=0"],
    ["--k", "0.5:3:3", "--no-diagnosis", "--reduce-range", "off,on", "--weight-pattern", "identity,dense"],
    ["--k", "0.5:3:3", "--weight-qscheme", "per_channel_symmetric,per_channel_affine",
     "--backend", "qnnpack,onednn"],
]

# {qat}, {qat_observing}, {int8}, {input_pt}, {input_npy}: the files of convnet_basic/qnnpack.
MODEL_RUNS = [
    ["{qat}", "{int8}", "--input", "{input_pt}", "--backend", "qnnpack"],
    ["{qat}", "{int8}", "--input", "{input_npy}", "--backend", "qnnpack", "--no-reference"],
    ["{qat}", "{int8}", "--input-shape", "1,3,32,32", "--backend", "qnnpack",
     "--fail-on", "max-dq=0,bin-mismatch=5,sqnr-min=20"],
    ["{qat_observing}", "{int8}", "--input", "{input_pt}", "--backend", "qnnpack", "--fail-on", "max-dq=255"],
]


def load_schema(kind):
    with open(os.path.join(SCHEMAS, "qparity.%s.schema.json" % kind)) as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def emit(binary, command, args, tmp, n):
    path = os.path.join(tmp, "%s-%d.json" % (command, n))
    cmd = [binary, command, "--rows", "2", *args, "--json", path]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode not in (0, 1):
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), proc.returncode, proc.stderr))
    with open(path) as f:
        return json.load(f), cmd


def emit_model(binary, args, files, tmp, n):
    path = os.path.join(tmp, "model-%d.json" % n)
    cmd = [binary, "model", *[a.format(**files) for a in args], "--json", path]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode not in (0, 1):
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), proc.returncode, proc.stderr))
    with open(path) as f:
        return json.load(f), cmd


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--qparity", required=True)
    ap.add_argument("--model-documents", action="store_true", help="also check qparity model --json")
    ap.add_argument("--models", default=None, help="make_models.py output directory (implies --model-documents)")
    opts = ap.parse_args()
    binary = os.path.abspath(opts.qparity)
    with_model = opts.model_documents or opts.models is not None
    kinds = ("seed", "explain", "sweep") + (("model",) if with_model else ())
    validators = {kind: load_schema(kind) for kind in kinds}
    failures = []
    docs = {}
    count = 0
    with tempfile.TemporaryDirectory(prefix="qparity-schema-") as tmp:
        for command, runs in (("seed", SEED_RUNS), ("explain", EXPLAIN_RUNS), ("sweep", SWEEP_RUNS)):
            for n, args in enumerate(runs):
                doc, cmd = emit(binary, command, args, tmp, n)
                docs.setdefault(command, doc)
                errors = sorted(validators[command].iter_errors(doc), key=lambda e: list(e.path))
                count += 1
                for e in errors[:5]:
                    failures.append("%s: %s at /%s" % (" ".join(cmd), e.message,
                                                        "/".join(map(str, e.path))))
        if with_model:
            import model_fixtures
            root = model_fixtures.models_root(opts.models, ("convnet_basic",))
            f = model_fixtures.model_files(root, "convnet_basic")
            files = {"qat": f["qat.pt"], "qat_observing": f["qat_observing.pt"], "int8": f["int8.pt"],
                     "input_pt": f["input.pt"], "input_npy": f["input.npy"]}
            for n, run_args in enumerate(MODEL_RUNS):
                doc, cmd = emit_model(binary, run_args, files, tmp, n)
                docs.setdefault("model", doc)
                if "budgets" in doc:
                    docs.setdefault("model-budgets", doc)
                errors = sorted(validators["model"].iter_errors(doc), key=lambda e: list(e.path))
                count += 1
                for e in errors[:5]:
                    failures.append("%s: %s at /%s" % (" ".join(cmd), e.message,
                                                        "/".join(map(str, e.path))))
    # The schemas must reject broken documents.
    broken = []
    seed = copy.deepcopy(docs["seed"])
    seed["paths"]["int8"]["bins_row"] = seed["paths"]["int8"]["bins_row"][:255]
    broken.append(("seed", seed, "a 255-value bins_row"))
    seed = copy.deepcopy(docs["seed"])
    del seed["compare"]["first_mismatch"]
    broken.append(("seed", seed, "no first_mismatch"))
    seed = copy.deepcopy(docs["seed"])
    seed["diagnosis"][0]["class"] = "bad_luck"
    broken.append(("seed", seed, "an unknown class"))
    sweep = copy.deepcopy(docs["sweep"])
    sweep["schema"] = "qparity.sweep/2"
    broken.append(("sweep", sweep, "another schema version"))
    explain = copy.deepcopy(docs["explain"])
    explain["index"] = [0, 0, 0]
    broken.append(("explain", explain, "a 3-number index"))
    if with_model:
        model = docs["model"]
        divergent = [i for i, l in enumerate(model["layers"]) if l["compare"]["bin_mismatch_count"] > 0]
        agreeing = [i for i, l in enumerate(model["layers"]) if l["compare"]["bin_mismatch_count"] == 0]
        m = copy.deepcopy(model)
        m["schema"] = "qparity.model/2"
        broken.append(("model", m, "another schema version"))
        m = copy.deepcopy(model)
        del m["layers"][0]["compare"]["first_mismatch"]
        broken.append(("model", m, "a layer without first_mismatch"))
        m = copy.deepcopy(model)
        del m["layers"][0]["int8"]["zero_point"]
        broken.append(("model", m, "a layer's int8 grid without zero_point"))
        m = copy.deepcopy(model)
        m["layers"][0]["fake_quant"]["scale"] = 0
        broken.append(("model", m, "a zero scale"))
        m = copy.deepcopy(model)
        m["layers"][0]["compare"]["sqnr_db"] = "lots"
        broken.append(("model", m, "an SQNR that is neither a number nor inf"))
        m = copy.deepcopy(model)
        m["outputs"]["int8"][0] = None
        broken.append(("model", m, "a null output value"))
        m = copy.deepcopy(model)
        del m["outputs"]["shape"]
        broken.append(("model", m, "outputs without shape"))
        m = copy.deepcopy(model)
        m["reference"]["skipped"] = "why not"
        broken.append(("model", m, "a reference both run and skipped"))
        m = copy.deepcopy(model)
        m["summary"]["extra"] = 1
        broken.append(("model", m, "an unknown summary key"))
        m = copy.deepcopy(model)
        m["layers"][0]["compare"]["dq_histogram"]["0"] = 3
        broken.append(("model", m, "a histogram entry for dq = 0"))
        if divergent:
            m = copy.deepcopy(model)
            m["layers"][divergent[0]]["compare"]["first_mismatch"] = None
            broken.append(("model", m, "a divergent layer without first mismatch"))
            m = copy.deepcopy(model)
            m["summary"]["agree"] = True
            broken.append(("model", m, "agree with a first divergent layer"))
            m = copy.deepcopy(model)
            m["layers"][divergent[0]]["compare"]["first_mismatch"]["int8_bin"] = 256
            broken.append(("model", m, "an int8 bin of 256"))
        if agreeing:
            m = copy.deepcopy(model)
            m["layers"][agreeing[0]]["compare"]["max_abs_dq"] = 2
            broken.append(("model", m, "max |dq| 2 without a mismatching bin"))
        if "model-budgets" in docs:
            m = copy.deepcopy(docs["model-budgets"])
            m["budgets"][0]["budget"] = "fp32-mismatch"
            broken.append(("model", m, "a budget qparity model does not have"))
    for kind, doc, what in broken:
        if validators[kind].is_valid(doc):
            failures.append("the %s schema accepts a document with %s" % (kind, what))
    for f in failures:
        print("FAIL " + f)
    print("schemas: %d documents validated, %d broken ones rejected, %d problems"
          % (count, len(broken), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
