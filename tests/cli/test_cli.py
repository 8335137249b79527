#!/usr/bin/python3
"""Runs the qparity binary: help, version, defaults, exit codes, JSON, and every bad input.

Usage: test_cli.py --qparity PATH [unittest options]
Every bad input must give exactly one line on stderr naming the problem, exit code 2, and
leave no JSON file (complete or partial) behind.
"""
import argparse
import json
import os
import stat
import subprocess
import sys
import tempfile
import unittest

QPARITY = None


def load_json(path):
    with open(path) as f:
        return json.load(f)


def read_text(path):
    with open(path) as f:
        return f.read()


def run(*args, cwd=None):
    return subprocess.run([QPARITY, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


class HelpAndVersion(unittest.TestCase):
    def test_help_teaches_every_option(self):
        for argv in (["--help"], ["seed", "--help"], ["-h"]):
            r = run(*argv)
            self.assertEqual(r.returncode, 0, argv)
            self.assertIn("Usage", r.stdout)
        seed_help = run("seed", "--help").stdout
        for option in ("--k", "--backend", "--observer", "--rows", "--json", "fbgemm", "qnnpack",
                       "onednn", "fused", "plain", "Exit codes"):
            self.assertIn(option, seed_help)
        self.assertIn("Examples", run("--help").stdout)

    def test_version_on_every_command(self):
        for argv in (["--version"], ["seed", "--version"]):
            r = run(*argv)
            self.assertEqual(r.returncode, 0, argv)
            self.assertRegex(r.stdout.strip(), r"^qparity \d+\.\d+\.\d+$")


class SeedRuns(unittest.TestCase):
    def test_bare_qparity_runs_the_seed_and_reports_divergence(self):
        r = run()
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stderr, "")
        for text in ("error_mean = 0.0020", "error_max  = 0.0039", "[0, 0, 0, 128]",
                     "value expected quint8: 128", "value output quint8:   127",
                     "0, 1, ..., 126, 127, 128, 129, ..., 255",
                     "0, 1, ..., 126, 127, 127, 128, ..., 254", "identical in both paths: yes",
                     "EMULATED", "fbgemm"):
            self.assertIn(text, r.stdout)
        self.assertEqual(r.stdout, run("seed").stdout)

    def test_agreeing_paths_exit_zero(self):
        r = run("seed", "--observer", "plain", "--backend", "qnnpack", "--rows", "4")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("agree", r.stdout)

    def test_k_other_than_one_notes_the_truncating_formula(self):
        r = run("seed", "--k", "3", "--rows", "1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("truncates", r.stdout)

    def test_json_has_the_documented_keys(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "out.json")
            r = run("seed", "--rows", "2", "--json", path)
            self.assertEqual(r.returncode, 1, r.stderr)
            doc = load_json(path)
            self.assertEqual(doc["schema"], "qparity.seed/1")
            for name in ("fake_quant", "int8"):
                p = doc["paths"][name]
                self.assertEqual(len(p["bins_row"]), 256)
                for key in ("weight_scale", "weight_zero_point", "input_scale", "input_zero_point",
                            "output_scale", "output_zero_point"):
                    self.assertIn(key, p)
            c = doc["compare"]
            self.assertEqual(c["first_mismatch"]["index"], [0, 0, 0, 128])
            for key in ("error_mean", "error_max", "fp32_mismatch_count", "bin_mismatch_count",
                        "rows_identical"):
                self.assertIn(key, c)
            self.assertEqual(os.listdir(d), ["out.json"], "no temporary file may remain")

    def test_json_first_mismatch_is_null_when_paths_agree(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "agree.json")
            r = run("seed", "--observer", "plain", "--rows", "1", "--json", path)
            self.assertEqual(r.returncode, 0)
            self.assertIsNone(load_json(path)["compare"]["first_mismatch"])


class Explain(unittest.TestCase):
    def test_default_traces_the_first_mismatch(self):
        r = run("explain", "--rows", "2")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("element [0, 0, 0, 128]", r.stdout)
        self.assertIn("<- first difference", r.stdout)
        self.assertIn("the paths first differ at: weight[c=0] dequantized", r.stdout)

    def test_agreeing_element_exits_zero(self):
        r = run("explain", "--rows", "2", "--index", "0,0,1,5")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("output of this element is nevertheless identical", r.stdout)
        r = run("explain", "--rows", "2", "--index", "0,0,1,0")
        self.assertEqual(r.returncode, 0)

    def test_json(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "e.json")
            r = run("explain", "--rows", "1", "--index", "0,2,0,200", "--json", path)
            self.assertEqual(r.returncode, 1)
            doc = load_json(path)
            self.assertEqual(doc["schema"], "qparity.explain/1")
            self.assertEqual(doc["index"], [0, 2, 0, 200])
            self.assertTrue(any(s["differs"] for s in doc["stages"]))

    def test_bad_index(self):
        for value, why in (("0,0,0,256", "outside"), ("0,3,0,0", "outside"), ("1,0,0,0", "outside"),
                           ("0,0,2,0", "outside"), ("-1,0,0,0", "outside"), ("0,0,0", "four"),
                           ("0,0,0,0,0", "four"), ("a,b,c,d", "integers"), ("", "integers"),
                           # CLI11 splits the list and skips the empty item: three numbers
                           ("0,,0,0", "four"), ("0.5,0,0,0", "integers"),
                           ("0,0,0,99999999999999999999", "too large")):
            with tempfile.TemporaryDirectory() as d:
                r = run("explain", "--rows", "2", "--index", value, "--json", os.path.join(d, "e.json"))
                self.assertEqual(r.returncode, 2, value)
                self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
                self.assertIn("--index", r.stderr)
                self.assertIn(why, r.stderr, value)
                self.assertEqual(os.listdir(d), [])


class Diagnosis(unittest.TestCase):
    def test_seed_reports_cause_and_verified_fixes(self):
        r = run("--rows", "2")
        self.assertIn("grid_mismatch at the weight", r.stdout)
        self.assertIn("every mismatching element is explained", r.stdout)
        self.assertIn("FIX  use FakeQuantize", r.stdout)

    def test_no_diagnosis_flag(self):
        r = run("--rows", "2", "--no-diagnosis")
        self.assertNotIn("diagnosis", r.stdout)
        self.assertEqual(r.returncode, 1)

    def test_json_fixes_say_what_to_apply(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "s.json")
            run("--rows", "2", "--json", path)
            doc = load_json(path)
            self.assertEqual(doc["diagnosis"][0]["class"], "grid_mismatch")
            self.assertEqual(doc["diagnosis"][0]["point"], "weight")
            fixes = {f["change"]: f for f in doc["fixes"]}
            plain = [f for f in doc["fixes"] if f["apply"] == {"--observer": "plain"}]
            self.assertEqual(len(plain), 1)
            self.assertTrue(plain[0]["verified_parity"])
            self.assertTrue(fixes)


class Budgets(unittest.TestCase):
    def test_exceeded_budgets_are_named_and_exit_one(self):
        r = run("--rows", "2", "--no-diagnosis", "--fail-on", "max-dq=0,bin-mismatch=10")
        self.assertEqual(r.returncode, 1)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 2, r.stderr)
        self.assertIn("budget exceeded: max-dq=0 (measured 1)", lines[0])
        self.assertIn("budget exceeded: bin-mismatch=10 (measured 768)", lines[1])

    def test_budgets_that_hold_exit_zero_even_when_bins_differ(self):
        r = run("--rows", "2", "--no-diagnosis", "--fail-on", "max-dq=1", "--fail-on",
                "fp32-error-max=0.004")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")

    def test_budget_list_skips_empty_items(self):
        # CLI11 splits --fail-on at commas and skips empty items (deliberately accepted).
        r = run("--rows", "1", "--no-diagnosis", "--fail-on", "max-dq=1,,bin-mismatch=768,")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_budgets_in_json(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "b.json")
            run("--rows", "1", "--no-diagnosis", "--fail-on", "error-mean=1", "--json", path)
            self.assertEqual(load_json(path)["budgets"][0]["budget"], "error-mean")
            self.assertFalse(load_json(path)["budgets"][0]["exceeded"])


class BadInput(unittest.TestCase):
    def assert_usage_error(self, argv, *fragments, json_dir=None):
        r = run(*argv)
        self.assertEqual(r.returncode, 2, f"{argv}: {r.stdout}{r.stderr}")
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, f"{argv}: stderr must be one line: {r.stderr!r}")
        for fragment in fragments:
            self.assertIn(fragment, lines[0], argv)
        self.assertEqual(r.stdout, "", f"{argv}: nothing on stdout for a usage error")
        if json_dir is not None:
            self.assertEqual(os.listdir(json_dir), [], f"{argv}: a file was left behind")

    def test_bad_k(self):
        for value, why in (("0", "greater than 0"), ("-1", "greater than 0"),
                           ("nan", "not a finite"), ("NaN", "not a finite"), ("inf", "not a finite"),
                           ("-inf", "not a finite"), ("abc", "not a number"), ("", "not a number"),
                           ("1.0x", "not a number"), ("1e999", "not a finite"),
                           ("1e-300", "float32")):
            with tempfile.TemporaryDirectory() as d:
                self.assert_usage_error(["seed", "--k", value, "--json", os.path.join(d, "o.json")],
                                        "--k", why, json_dir=d)

    def test_integers_are_decimal(self):
        # CLI11 alone would read 010 as octal 8 and 0x10 as 16.
        r = run("seed", "--rows", "010", "--no-diagnosis")
        self.assertIn("input [1, 3, 10, 256]", r.stdout)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "r.json")
            run("seed", "--rows", "010", "--no-diagnosis", "--json", path)
            self.assertEqual(load_json(path)["scenario"]["rows"], 10)
        self.assert_usage_error(["seed", "--rows", "0x10"], "--rows", "not an integer")

    def test_values_with_newlines_make_one_line_errors(self):
        self.assert_usage_error(["seed", "--k", "1\n2"], "--k", "$'1\\n2'")
        self.assert_usage_error(["seed", "--backend", "a\nb"], "--backend")
        self.assert_usage_error(["seed", "--fail-on", "a\nb"], "--fail-on", "a\\nb")
        self.assert_usage_error(["explain", "--index", "a\nb"], "a\\nb")

    def test_bad_rows(self):
        for value, why in (("0", "at least 1"), ("-5", "at least 1"), ("many", "not an integer"),
                           ("2.5", "not an integer"), ("99999999999999999999", "too large"),
                           ("1000000000000", "memory"), ("4000000000000000000", "memory")):
            with tempfile.TemporaryDirectory() as d:
                self.assert_usage_error(
                    ["seed", "--rows", value, "--json", os.path.join(d, "o.json")], "--rows", why,
                    json_dir=d)

    def test_bad_knobs(self):
        self.assert_usage_error(["seed", "--weight-qscheme", "per_channel"], "--weight-qscheme")
        self.assert_usage_error(["seed", "--weight-quant-min", "-129"], "--weight-quant-min")
        self.assert_usage_error(["seed", "--weight-quant-min", "127"], "--weight-quant-min")
        # PyTorch's observers assert quant_min <= 0 <= quant_max; a range without 0 gave a NaN scale.
        self.assert_usage_error(["seed", "--weight-quant-min", "126", "--weight-pattern", "mixed"],
                                "--weight-quant-min 126", "include 0")
        self.assertEqual(run("seed", "--no-diagnosis", "--weight-quant-min", "0").returncode in (0, 1), True)
        self.assert_usage_error(["seed", "--weight-pattern", "random"], "--weight-pattern")
        self.assert_usage_error(["seed", "--weight-observer-max", "nan"], "--weight-observer-max")
        self.assert_usage_error(["seed", "--output-scale", "0"], "--output-scale")
        self.assert_usage_error(["seed", "--input-scale", "-1"], "--input-scale")
        self.assert_usage_error(["seed", "--weight-scale", "x"], "--weight-scale")

    def test_bad_observer_and_scale_values_are_named_with_their_value(self):
        # Every refusal names the option and quotes the value (never an internal message).
        cases = ((["--weight-observer-max", "-1"], "--weight-observer-max -1", "min_val 0"),
                 (["--output-observer-min", "1e39"], "--output-observer-min 1e+39", "finite float32"),
                 (["--output-observer-min", "2", "--output-observer-max", "1"], "--output-observer-min 2",
                  "--output-observer-max"),
                 (["--output-observer-max", "-1"], "--output-observer-max -1", "min_val 0"),
                 (["--weight-scale", "1e-45"], "--weight-scale 1e-45", "positive normal"),
                 (["--k", "1e39"], "--k 1e+39", "float32 range"))
        for args, *fragments in cases:
            self.assert_usage_error(["seed", *args], *fragments)
        for ok in (["--weight-observer-max", "0"], ["--weight-pattern", "negative", "--weight-observer-max", "-1"]):
            self.assertEqual(run("seed", "--no-diagnosis", *ok).returncode, 0, ok)

    def test_bad_budgets(self):
        for value, why in (("foo=1", "unknown budget"), ("max-dq", "NAME=LIMIT"),
                           ("max-dq=-1", "limit >= 0"), ("max-dq=x", "limit >= 0"),
                           ("bin-mismatch=0.5", "integer"), ("fp32-error-max=nan", "limit >= 0"),
                           ("max-dq=0,bin-mismatch", "NAME=LIMIT"), ("max-dq=", "limit >= 0")):
            with tempfile.TemporaryDirectory() as d:
                self.assert_usage_error(["seed", "--fail-on", value, "--json", os.path.join(d, "o.json")],
                                        "--fail-on", why, json_dir=d)
        self.assert_usage_error(["explain", "--fail-on", "max-dq=0"], "--fail-on")

    def test_bad_html_paths(self):
        with tempfile.TemporaryDirectory() as d:
            self.assert_usage_error(["seed", "--html", os.path.join(d, "no", "r.html")], "--html",
                                    json_dir=d)
            self.assert_usage_error(["seed", "--html", d], "--html", json_dir=d)
            same = os.path.join(d, "same")
            self.assert_usage_error(["seed", "--json", same, "--html", same], "--html", json_dir=d)
            self.assert_usage_error(["explain", "--html", "/proc/x.html"], "--html")

    def test_unknown_backend_and_observer(self):
        self.assert_usage_error(["seed", "--backend", "tpu"], "--backend", "tpu", "qnnpack")
        self.assert_usage_error(["seed", "--backend", "QNNPACK"], "--backend")
        self.assert_usage_error(["seed", "--observer", "minmax"], "--observer", "minmax", "fused")

    def test_unknown_flags_and_commands(self):
        self.assert_usage_error(["seed", "--frobnicate"], "frobnicate")
        self.assert_usage_error(["explode"], "explode")
        self.assert_usage_error(["seed", "--k"], "--k")

    def test_unwritable_json(self):
        with tempfile.TemporaryDirectory() as d:
            self.assert_usage_error(["seed", "--json", os.path.join(d, "missing", "o.json")],
                                    "--json", "does not exist", json_dir=d)
            self.assert_usage_error(["seed", "--json", d], "--json", "directory", json_dir=d)
            self.assert_usage_error(["seed", "--json", ""], "--json")
            if os.geteuid() != 0:  # root writes anywhere; the read-only case needs a user
                locked = os.path.join(d, "locked")
                os.mkdir(locked)
                os.chmod(locked, stat.S_IRUSR | stat.S_IXUSR)
                self.assert_usage_error(["seed", "--json", os.path.join(locked, "o.json")], "--json")

    def test_unwritable_json_via_proc(self):
        # /proc refuses new files even for root.
        self.assert_usage_error(["seed", "--json", "/proc/qparity-test.json"], "--json")

    def test_existing_json_is_replaced_whole_or_kept(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "keep.json")
            with open(path, "w") as f:
                f.write("previous")
            self.assert_usage_error(["seed", "--k", "-1", "--json", path], "--k")
            self.assertEqual(read_text(path), "previous", "a failed run must not touch the file")
            r = run("seed", "--rows", "1", "--json", path)
            self.assertEqual(r.returncode, 1)
            self.assertEqual(load_json(path)["scenario"]["rows"], 1)


def main():
    global QPARITY
    parser = argparse.ArgumentParser()
    parser.add_argument("--qparity", required=True)
    args, rest = parser.parse_known_args()
    QPARITY = os.path.abspath(args.qparity)
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)


if __name__ == "__main__":
    main()
