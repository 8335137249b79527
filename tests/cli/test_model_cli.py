#!/usr/bin/python3
"""`qparity model` on bad input and on good input.

Every bad input (a file that is not TorchScript, a truncated model, the two models swapped or not
corresponding, an input of the wrong shape, dtype or values, a malformed .npy, bad option values)
must give exit code 2, exactly one line on stderr that starts "qparity model: error:" and names
the file or option at fault, and leave no --json / --html file behind (an existing one is left
untouched, and no temporary file remains). Good runs exit 0 or 1 and write both reports.

Usage: /usr/bin/python3 test_model_cli.py --qparity PATH [--models DIR] [unittest options]
--models: a make_models.py output directory with convnet_basic and residual_net on qnnpack; without
it the models are generated into a cache (see model_fixtures.py).
"""
import argparse
import json
import re
import os
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import unittest
import zipfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import model_fixtures  # noqa: E402

QPARITY = None
MODELS = None


def read(path, mode="rb"):
    with open(path, mode) as f:
        return f.read()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def run(args, timeout=300):
    return subprocess.run([QPARITY, "model", *args], capture_output=True, text=True, timeout=timeout)


class ModelCliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="qparity-model-cli-")
        root = model_fixtures.models_root(MODELS, ("convnet_basic", "residual_net"))
        cls.conv = model_fixtures.model_files(root, "convnet_basic")
        cls.res = model_fixtures.model_files(root, "residual_net")
        t = cls.path
        x = torch.load(cls.conv["input.pt"])
        cls.x = x
        with open(t("text.pt"), "w") as f:
            f.write("this is not a model\n")
        open(t("empty.pt"), "wb").close()
        os.mkdir(t("a_directory"))
        model = read(cls.conv["qat.pt"])
        write(t("half.pt"), model[:len(model) // 2])
        model = read(cls.conv["int8.pt"])
        write(t("half_int8.pt"), model[:len(model) // 2])
        torch.save(x[:, :2].clone(), t("two_channels.pt"))
        torch.save(x[0].clone(), t("rank3.pt"))
        torch.save(x.double(), t("float64.pt"))
        torch.save(x.to(torch.int32), t("int32.pt"))
        y = x.clone()
        y[0, 0, 0, 5] = float("nan")
        torch.save(y, t("nan.pt"))
        np.save(t("nan.npy"), y.numpy())
        y = x.clone()
        y[0, 1, 2, 3] = float("-inf")
        torch.save(y, t("inf.pt"))
        np.save(t("inf.npy"), y.numpy())
        np.save(t("float64.npy"), x.double().numpy())
        np.save(t("int32.npy"), x.to(torch.int32).numpy())
        np.save(t("fortran.npy"), np.asfortranarray(x.numpy()))
        np.save(t("bigendian.npy"), x.numpy().astype(">f4"))
        good = read(cls.conv["input.npy"])
        write(t("truncated.npy"), good[:len(good) // 2])
        write(t("bad_magic.npy"), b"\x93NUMPX" + good[6:])
        write(t("truncated_header.npy"), good[:40])
        write(t("header_garbage.npy"), cls.npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1, x), }"))
        write(t("header_negative.npy"), cls.npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 3), }"))
        write(t("header_huge.npy"), cls.npy_with_header(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000, 100000000000), }"))
        write(t("header_no_shape.npy"), cls.npy_with_header("{'descr': '<f4', 'fortran_order': False, }"))
        # libtorch 1.13.1 itself crashes (SIGSEGV) loading a class constant without a type, and its
        # interpreter wraps a forward's error in a traceback (both found by the torch_qat fuzz
        # target, tests/fuzz/).
        cls.rewrite_model(cls.conv["qat.pt"], t("class_constant.pt"),
                          b"__parameters__ = []\n  __buffers__ = ", b"__parameters_  = []\n  __buffers_  = ")
        cls.rewrite_model(cls.conv["qat.pt"], t("forward_fails.pt"), b"torch.flatten(_6, 1)",
                          b"torch.flatten(_6, 7)")
        torch.save({"x": x}, t("dict.pt"))
        torch.save([x], t("list.pt"))
        torch.save(3, t("int_scalar.pt"))
        torch.save(torch.quantize_per_tensor(x, 0.1, 0, torch.quint8), t("quantized.pt"))
        torch.save(torch.empty(0), t("empty_tensor.pt"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def path(cls, name):
        return os.path.join(cls.tmp, name)

    @staticmethod
    def rewrite_model(src, dst, old, new):
        """A copy of the TorchScript archive `src` with `old` replaced in the model's own code."""
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
            done = False
            for info in zin.infolist():
                data = zin.read(info.filename)
                if info.filename.endswith("code/__torch__/make_models.py") and not done:
                    assert old in data, (info.filename, old)
                    data, done = data.replace(old, new, 1), True
                zout.writestr(info, data, compress_type=zipfile.ZIP_STORED)
            assert done, "no code/__torch__/make_models.py in " + src

    @staticmethod
    def npy_with_header(header):
        header = header.encode("latin1")
        header += b" " * ((64 - (10 + len(header) + 1) % 64) % 64) + b"\n"
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 48

    # ------------------------------------------------------------------------------------------

    def outputs(self, name):
        d = os.path.join(self.tmp, "out-" + name)
        os.makedirs(d, exist_ok=True)
        return os.path.join(d, "r.json"), os.path.join(d, "r.html")

    def assert_error(self, args, *names, label=None, json_path=None):
        """Runs with --json and --html; checks exit 2, one line naming `names`, no output."""
        label = label or " ".join(os.path.basename(a) for a in args)
        out_json, out_html = self.outputs(str(abs(hash(label))))
        extra = []
        if "--json" not in args:
            extra += ["--json", json_path or out_json]
        if "--html" not in args:
            extra += ["--html", out_html]
        r = run([*args, *extra])
        with self.subTest(case=label):
            self.assertEqual(r.returncode, 2, f"{label}: exit {r.returncode}, stderr {r.stderr!r}")
            lines = r.stderr.splitlines()
            self.assertEqual(len(lines), 1, f"{label}: expected one stderr line, got {lines!r}")
            line = lines[0] if lines else ""
            print(f"  {label}: {line}", flush=True)
            self.assertTrue(line.startswith("qparity model: error: "), f"{label}: {line!r}")
            for name in names:
                self.assertIn(name, line, f"{label}: the message should name {name!r}: {line!r}")
            self.assertEqual(r.stdout, "", f"{label}: nothing on stdout")
            d = os.path.dirname(out_json)
            self.assertEqual(os.listdir(d), [], f"{label}: files left behind: {os.listdir(d)}")
        return line

    def good_args(self, *rest):
        return [self.conv["qat.pt"], self.conv["int8.pt"], "--input", self.conv["input.pt"], "--backend", "qnnpack", *rest]

    # ------------------------------------------------------------------------------------------
    # Model files.

    def test_qat_not_torchscript(self):
        for name, what in (("text.pt", "TorchScript"), ("empty.pt", "empty"), ("half.pt", "TorchScript")):
            self.assert_error([self.path(name), self.conv["int8.pt"], "--input", self.conv["input.pt"],
                               "--backend", "qnnpack"], name, what, label="QAT " + name)

    def test_int8_not_torchscript(self):
        for name, what in (("text.pt", "TorchScript"), ("empty.pt", "empty"), ("half_int8.pt", "TorchScript")):
            self.assert_error([self.conv["qat.pt"], self.path(name), "--input", self.conv["input.pt"],
                               "--backend", "qnnpack"], name, what, label="int8 " + name)

    def test_model_code_that_crashes_libtorch(self):
        # libtorch calls through a null pointer here (undefined behaviour): it crashes (SIGSEGV, the
        # guard's message) or throws, depending on memory layout; either way one clean line.
        line = self.assert_error([self.path("class_constant.pt"), self.conv["int8.pt"], "--input",
                                  self.conv["input.pt"], "--backend", "qnnpack"], "class_constant.pt",
                                 label="QAT class_constant.pt")
        self.assertTrue("libtorch crashed reading it (SIGSEGV)" in line or "not a TorchScript model" in line, line)

    def test_model_forward_fails_in_libtorch(self):
        line = self.assert_error([self.path("forward_fails.pt"), self.conv["int8.pt"], "--input",
                                  self.conv["input.pt"], "--backend", "qnnpack"], "forward_fails.pt",
                                 "the model fails on the input", "Dimension out of range",
                                 label="QAT forward_fails.pt")
        self.assertNotIn("Traceback", line)

    def test_model_directory_or_missing(self):
        self.assert_error([self.path("a_directory"), self.conv["int8.pt"], "--input", self.conv["input.pt"],
                           "--backend", "qnnpack"], "a_directory", "directory", "QAT model")
        self.assert_error([self.conv["qat.pt"], self.path("missing.pt"), "--input", self.conv["input.pt"],
                           "--backend", "qnnpack"], "missing.pt", "no such file", "int8 model")

    def test_model_is_a_tensor_file(self):
        self.assert_error([self.conv["input.pt"], self.conv["int8.pt"], "--input", self.conv["input.npy"],
                           "--backend", "qnnpack"], "input.pt", "TorchScript", label="a tensor file as the QAT model")

    def test_models_swapped(self):
        self.assert_error([self.conv["int8.pt"], self.conv["int8.pt"].replace("int8.pt", "qat.pt"), "--input",
                           self.conv["input.pt"], "--backend", "qnnpack"], self.conv["int8.pt"], "not a QAT model",
                          label="swapped")
        self.assert_error([self.conv["int8.pt"], self.res["int8.pt"], "--input", self.conv["input.pt"],
                           "--backend", "qnnpack"], self.conv["int8.pt"], "not a QAT model", label="int8 as QAT")
        self.assert_error([self.conv["qat.pt"], self.res["qat.pt"], "--input", self.conv["input.pt"],
                           "--backend", "qnnpack"], self.res["qat.pt"], "not an int8 model", label="QAT as int8")

    def test_same_model_twice(self):
        self.assert_error([self.conv["qat.pt"], self.conv["qat.pt"], "--input", self.conv["input.pt"],
                           "--backend", "qnnpack"], "int8 model", self.conv["qat.pt"], label="same file twice")

    def test_models_do_not_correspond(self):
        line = self.assert_error([self.conv["qat.pt"], self.res["int8.pt"], "--input", self.conv["input.pt"],
                                  "--backend", "qnnpack"], self.conv["qat.pt"], self.res["int8.pt"],
                                 "do not correspond", "layer '", label="convnet QAT, residual int8")
        self.assertIn("QAT model", line)
        self.assert_error([self.res["qat.pt"], self.conv["int8.pt"], "--input", self.conv["input.pt"],
                           "--backend", "qnnpack"], self.res["qat.pt"], self.conv["int8.pt"], "do not correspond",
                          "layer '", label="residual QAT, convnet int8")

    # ------------------------------------------------------------------------------------------
    # Inputs.

    def input_error(self, name, *what):
        return self.assert_error([self.conv["qat.pt"], self.conv["int8.pt"], "--input", self.path(name),
                                  "--backend", "qnnpack"], name, *what, label="input " + name)

    def test_input_wrong_shape(self):
        line = self.input_error("two_channels.pt", "[1, 2, 32, 32]", "channels")
        self.assertIn(self.conv["qat.pt"], line)
        self.input_error("rank3.pt", "[3, 32, 32]")

    def test_input_wrong_dtype(self):
        for name in ("float64.pt", "int32.pt", "quantized.pt", "float64.npy", "int32.npy"):
            self.input_error(name, "float32")

    def test_input_not_finite(self):
        self.input_error("nan.pt", "NaN")
        self.input_error("nan.npy", "NaN")
        self.input_error("inf.pt", "infinite")
        self.input_error("inf.npy", "infinite")

    def test_input_malformed_npy(self):
        self.input_error("truncated.npy", "bytes")
        self.input_error("bad_magic.npy", "not a tensor")
        self.input_error("truncated_header.npy", "truncated")
        self.input_error("fortran.npy", "Fortran order")
        self.input_error("bigendian.npy", "big-endian")
        self.input_error("header_garbage.npy", "shape")
        self.input_error("header_negative.npy", "shape")
        self.input_error("header_huge.npy", "shape")
        self.input_error("header_no_shape.npy", "shape")

    def test_input_not_a_tensor(self):
        for name in ("dict.pt", "list.pt", "int_scalar.pt", "text.pt", "empty.pt", "empty_tensor.pt"):
            self.input_error(name)
        self.assert_error([self.conv["qat.pt"], self.conv["int8.pt"], "--input", self.conv["qat_observing.pt"],
                           "--backend", "qnnpack"], "qat_observing.pt", "tensor", label="a model as --input")
        self.assert_error([self.conv["qat.pt"], self.conv["int8.pt"], "--input", self.path("a_directory"),
                           "--backend", "qnnpack"], "--input", "a_directory", "directory", label="--input directory")
        self.assert_error([self.conv["qat.pt"], self.conv["int8.pt"], "--input", self.path("nothing.npy"),
                           "--backend", "qnnpack"], "--input", "nothing.npy", "no such file", label="--input missing")

    def test_input_shape(self):
        base = [self.conv["qat.pt"], self.conv["int8.pt"], "--backend", "qnnpack"]
        # CLI11 splits at commas and skips empty items: "1,3,,32" is [1, 3, 32], which the model
        # then refuses (deliberately: no longer "not an integer").
        for shape, what in (("0,3,32,32", "positive"), ("-1,3,32,32", "positive"), ("1,3,,32", "[1, 3, 32]"),
                            ("1,3,a,32", "integer"), ("1,1,1,1,1,1,1,1,1", "at most 8"),
                            ("100000,100000,100000", "too large"), ("99999999999999999999", "too large"),
                            ("1,3,32.5,32", "integer")):
            self.assert_error([*base, f"--input-shape={shape}"], "--input-shape", what, label="--input-shape " + shape)
        self.assert_error([*base, "--input-shape", "0,3,32,32"], "--input-shape", label="--input-shape 0 (separate)")
        # A rank the model cannot take: libtorch's own words, naming the model and the input.
        self.assert_error([*base, "--input-shape", "3,32,32"], "--input-shape", self.conv["qat.pt"], "[3, 32, 32]",
                          label="--input-shape wrong rank")
        self.assert_error([*base, "--input-shape", "1,4,32,32"], "--input-shape", self.conv["qat.pt"],
                          label="--input-shape wrong channels")
        self.assert_error(base, "--input", label="no input")
        self.assert_error([*base, "--input", self.conv["input.pt"], "--input-shape", "1,3,32,32"], "--input",
                          "--input-shape", label="both inputs")

    # ------------------------------------------------------------------------------------------
    # Options.

    def test_backend(self):
        base = [self.conv["qat.pt"], self.conv["int8.pt"], "--input", self.conv["input.pt"]]
        self.assert_error([*base, "--backend", "fbgemm"], "--backend", "fbgemm", label="--backend fbgemm")
        self.assert_error([*base, "--backend", "bogus"], "--backend", "bogus", label="--backend bogus")
        self.assert_error(base, "--backend", label="no --backend")

    def test_threads(self):
        self.assert_error(self.good_args("--threads", "0"), "--threads", label="--threads 0")
        self.assert_error(self.good_args("--threads", "x"), "--threads", label="--threads x")
        self.assert_error(self.good_args("--torch-threads", "0"), "--torch-threads", label="--torch-threads 0")

    def test_diagnosis_options(self):
        self.assert_error(self.good_args("--no-diagnosis", "--check-diagnosis"), "--check-diagnosis",
                          label="--check-diagnosis with --no-diagnosis")
        self.assert_error([self.conv["qat.pt"], "--input", self.conv["input.pt"], "--backend", "fbgemm",
                           "--check-diagnosis"], "--check-diagnosis", "fbgemm", label="--check-diagnosis on fbgemm")

    def test_trace_options(self):
        self.assert_error(self.good_args("--layer", "no_such_layer"), "--layer", "no_such_layer",
                          label="--layer unknown")
        self.assert_error(self.good_args("--layer", "fc", "--index", "0,99"), "--index", "fc",
                          label="--index outside the layer")
        self.assert_error(self.good_args("--layer", "fc", "--index", "0"), "--index", label="--index too short")
        self.assert_error(self.good_args("--index", "0,1"), "--index", label="--index without --layer")
        self.assert_error(self.good_args("--layer", "fc", "--index", "a,b"), "--index", label="--index a,b")

    def test_trace(self):
        out_json, _ = self.outputs("trace")
        r = run(self.good_args("--no-reference", "--layer", "fc", "--index", "0,3", "--json", out_json))
        self.assertIn(r.returncode, (0, 1), r.stderr)
        doc = json.loads(read(out_json, "r"))
        self.assertEqual(doc["trace"]["layer"], "fc")
        self.assertEqual(doc["trace"]["position"], [0, 3])
        self.assertIn("weight integers at the taps", [row["stage"] for row in doc["trace"]["rows"]])
        self.assertIn("element [0, 3] of fc", r.stdout)

    def test_explain_on_a_model(self):
        # `qparity explain QAT.pt ...` is the model form of explain: the trace only, exit 0/1 by the
        # element's bins, and --layer is required.
        args = [self.conv["qat.pt"], self.conv["int8.pt"], "--input", self.conv["input.pt"], "--backend", "qnnpack"]
        r = subprocess.run([QPARITY, "explain", *args, "--layer", "fc", "--index", "0,3"], capture_output=True, text=True)
        self.assertIn(r.returncode, (0, 1), r.stderr)
        self.assertTrue(r.stdout.startswith("qparity explain: "), r.stdout[:80])
        self.assertIn("element [0, 3] of fc", r.stdout)
        self.assertNotIn("first divergent layer", r.stdout)
        bins = re.search(r"fake-quant bin (\d+), int8 bin (\d+)", r.stdout)
        self.assertEqual(r.returncode, 0 if bins.group(1) == bins.group(2) else 1)
        r = subprocess.run([QPARITY, "explain", *args], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertRegex(r.stderr, r"^qparity explain: error: --layer")

    def test_fail_on(self):
        for item in ("max-dq", "foo=1", "max-dq=-1", "max-dq=1.5", "sqnr-min=abc", "max-dq=inf", "bin-mismatch=",
                     "sqnr-min=nan"):
            self.assert_error(self.good_args("--fail-on", item), "--fail-on", label="--fail-on " + item)

    def test_outputs(self):
        self.assert_error(self.good_args("--json", self.path("no/such/dir/r.json")), "--json", "no/such/dir",
                          label="--json in a missing directory")
        self.assert_error(self.good_args("--json", self.conv["qat.pt"]), "--json", self.conv["qat.pt"],
                          label="--json over the QAT model")
        same = self.path("same.out")
        self.assert_error(self.good_args("--json", same, "--html", same), "--html", "same.out", label="--json = --html")
        self.assertFalse(os.path.exists(same))
        self.assert_error([self.conv["qat.pt"], self.conv["int8.pt"], "--input", self.conv["input.pt"], "--backend",
                           "qnnpack", "--bogus"], "--bogus", label="unknown option")
        self.assert_error([], "QAT.pt", label="no arguments")

    def test_outputs_shared_with_qparity(self):
        # The output writer of `qparity` (issue 9): devices stay devices, all or nothing, no
        # empty `--json=`, a name that is not UTF-8 is recorded escaped.
        r = run(self.good_args("--no-reference", "--json", "/dev/null", "--html", "/dev/null"))
        self.assertIn(r.returncode, (0, 1), r.stderr)
        self.assertTrue(stat.S_ISCHR(os.stat("/dev/null").st_mode))
        out_dir = os.path.join(self.tmp, "all-or-nothing")
        os.makedirs(out_dir)
        out = os.path.join(out_dir, "r.json")
        with open(out, "w") as f:
            f.write("old\n")
        r = run(self.good_args("--no-reference", "--json", out, "--html", "/dev/full"))
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--html", r.stderr)
        self.assertEqual(read(out, "r"), "old\n")
        self.assertEqual(os.listdir(out_dir), ["r.json"])
        r = run(self.good_args("--json=", "--no-reference"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("--json: no value after '='", r.stderr)
        self.assertFalse(os.path.exists("--no-reference"))
        latin1 = os.path.join(out_dir.encode(), b"r\xe9sum\xe9.json")
        r = subprocess.run([QPARITY, "model", *self.good_args("--no-reference", "--json")] + [latin1],
                           capture_output=True, timeout=600)
        self.assertIn(r.returncode, (0, 1), r.stderr)
        with open(latin1) as f:
            self.assertIn(r"r\xe9sum\xe9.json'", json.load(f)["command_line"])

    def test_existing_output_untouched(self):
        out_dir = os.path.join(self.tmp, "keep")
        os.makedirs(out_dir)
        out = os.path.join(out_dir, "r.json")
        with open(out, "w") as f:
            f.write("old\n")
        r = run([self.path("text.pt"), self.conv["int8.pt"], "--input", self.conv["input.pt"], "--backend", "qnnpack",
                 "--json", out])
        self.assertEqual(r.returncode, 2)
        self.assertEqual(read(out, "r"), "old\n")
        self.assertEqual(os.listdir(out_dir), ["r.json"])

    # ------------------------------------------------------------------------------------------
    # Good runs.

    def test_fbgemm_one_file_form_runs_without_the_engine(self):
        # Debian's libtorch has no fbgemm: the one-file form still emulates it (qparity derives the
        # int8 model), says why there is no reference check, and names the engine it emulated.
        out_json, _ = self.outputs("fbgemm")
        r = run([self.conv["qat.pt"], "--input", self.conv["input.pt"], "--backend", "fbgemm", "--json", out_json])
        self.assertIn(r.returncode, (0, 1), r.stderr)
        doc = json.loads(read(out_json, "r"))
        self.assertEqual(doc["backend"]["name"], "fbgemm")
        self.assertIsNone(doc["models"]["int8"])
        self.assertEqual(doc["convert"]["mode"], "derived")
        self.assertIn("no fbgemm engine", doc["reference"]["skipped"])
        self.assertGreaterEqual(len(doc["layers"]), 4)

    def test_good_run_writes_reports(self):
        out_json, out_html = self.outputs("good")
        r = run(self.good_args("--json", out_json, "--html", out_html))
        self.assertIn(r.returncode, (0, 1), r.stderr)
        self.assertEqual(r.stderr, "")
        doc = json.loads(read(out_json, "r"))
        self.assertEqual(doc["schema"], "qparity.model/1")
        self.assertGreaterEqual(len(doc["layers"]), 4)
        self.assertTrue(doc["reference"]["qat"]["exact"] and doc["reference"]["int8"]["exact"])
        self.assertEqual(r.returncode, 0 if doc["summary"]["agree"] else 1)
        self.assertEqual(len(doc["outputs"]["fake_quant"]), 10)
        # The diagnosis (on by default): a local count per layer, findings that explain them all.
        self.assertTrue(all("bin_mismatch_count" in l["local"] for l in doc["layers"]))
        local = sum(l["local"]["bin_mismatch_count"] for l in doc["layers"])
        self.assertEqual(doc["summary"]["diagnosis"]["explained_elements"], local)
        self.assertEqual(sum(f["explains_elements"] for f in doc["diagnosis"]), local)
        if local:
            self.assertIn("diagnosis (each int8 layer re-run", r.stdout)
        html = read(out_html).decode("utf-8")
        self.assertTrue(html.startswith("<!DOCTYPE html>"))
        self.assertIn('<table id="layers"', html)
        self.assertIn('<svg id="depth-chart"', html)
        for layer in doc["layers"]:
            self.assertIn(f'data-layer="{layer["name"]}"', html)
        self.assertNotIn("<script", html.lower())
        self.assertEqual(sorted(os.listdir(os.path.dirname(out_json))), ["r.html", "r.json"])

    def test_good_npy_no_reference_budgets(self):
        out_json, out_html = self.outputs("npy")
        r = run([self.conv["qat.pt"], self.conv["int8.pt"], "--input", self.conv["input.npy"], "--backend", "qnnpack",
                 "--no-reference", "--fail-on", "max-dq=255,bin-mismatch=1000000,sqnr-min=-100", "--json", out_json])
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(read(out_json, "r"))
        self.assertEqual(doc["reference"], {"skipped": "--no-reference"})
        self.assertEqual([b["exceeded"] for b in doc["budgets"]], [False, False, False])
        r = run([self.conv["qat.pt"], self.conv["int8.pt"], "--input", self.conv["input.npy"], "--backend", "qnnpack",
                 "--no-reference", "--no-diagnosis", "--json", out_json])
        doc = json.loads(read(out_json, "r"))
        self.assertEqual(doc["summary"]["diagnosis"], {"skipped": "--no-diagnosis"})
        self.assertNotIn("diagnosis", doc)
        self.assertTrue(all("local" not in l for l in doc["layers"]))

    def test_budget_exceeded(self):
        r = run(self.good_args("--no-reference", "--fail-on", "max-dq=0"))
        doc_agree = "the two paths agree bin for bin" in r.stdout
        self.assertEqual(r.returncode, 0 if doc_agree else 1, r.stderr)
        if not doc_agree:
            self.assertRegex(r.stderr, r"^qparity model: budget max-dq=0 exceeded: max \|dq\| \d+ in layer \S+\n$")

    def test_synthetic_input(self):
        out_json, _ = self.outputs("synthetic")
        r = run([self.conv["qat.pt"], self.conv["int8.pt"], "--input-shape", "1,3,32,32", "--backend", "qnnpack",
                 "--json", out_json])
        self.assertIn(r.returncode, (0, 1), r.stderr)
        doc = json.loads(read(out_json, "r"))
        self.assertEqual(doc["input"]["shape"], [1, 3, 32, 32])
        self.assertTrue(doc["summary"]["reference_exact"])

    def test_help(self):
        r = run(["--help"])
        self.assertEqual(r.returncode, 0)
        for option in ("--input", "--input-shape", "--backend", "--json", "--html", "--fail-on", "--no-reference",
                       "--no-diagnosis", "--check-diagnosis", "--layer", "--index"):
            self.assertIn(option, r.stdout)


def main():
    global QPARITY, MODELS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--qparity", required=True)
    ap.add_argument("--models", default=None)
    args, rest = ap.parse_known_args()
    QPARITY = os.path.abspath(args.qparity)
    MODELS = args.models
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)


if __name__ == "__main__":
    main()
