#!/usr/bin/python3
"""Runs `qparity sweep`: help, console report, CSV, JSON, exit codes, and every bad input.

Usage: test_sweep_cli.py --qparity PATH [unittest options]
Every bad input must give exactly one line on stderr naming the option, exit code 2, nothing on
stdout, and leave no output file (complete, partial or temporary) behind.
"""
import argparse
import csv
import io
import json
import os
import stat
import struct
import subprocess
import sys
import tempfile
import unittest

QPARITY = None

OPTIONS = ("--k", "--log", "--backend", "--observer", "--weight-qscheme", "--reduce-range",
           "--weight-pattern", "--rows", "--threads", "--refine", "--no-diagnosis", "--json",
           "--csv", "--html", "--fail-on", "--help", "--version")
VALUES = ("fbgemm", "qnnpack", "onednn", "fused", "plain", "per_tensor_symmetric",
          "per_tensor_affine", "off", "on", "identity", "negative", "mixed", "dense")
CSV_HEADER = ["series", "k", "backend", "observer", "weight_qscheme", "reduce_range",
              "weight_pattern", "rows", "outcome", "bin_mismatch_count", "fp32_mismatch_count",
              "max_abs_delta_q", "first_n", "first_c", "first_h", "first_w", "first_expected_q",
              "first_actual_q", "error"]
POINT_KEYS = ("series", "k", "backend", "observer", "weight_qscheme", "reduce_range",
              "weight_pattern", "rows", "bin_mismatch_count", "fp32_mismatch_count",
              "max_abs_delta_q", "outcome", "first_mismatch", "error")
# A small sweep with outcome changes (the fused weight scale floor near k = 0.0156).
SMALL = ["--k", "0.005:0.05:8", "--log", "--backend", "qnnpack,onednn", "--rows", "2"]


def run(*args, cwd=None):
    return subprocess.run([QPARITY, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def load_json(path):
    with open(path) as f:
        return json.load(f)


def read_text(path):
    with open(path) as f:
        return f.read()


def is_float32(v):
    return struct.unpack("f", struct.pack("f", v))[0] == v


class Help(unittest.TestCase):
    def test_sweep_help_lists_every_option_and_value(self):
        r = run("sweep", "--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        for text in OPTIONS + VALUES + ("Usage", "START:STOP:COUNT", "Examples", "Exit codes"):
            self.assertIn(text, r.stdout, text)
        self.assertEqual(r.stderr, "")

    def test_top_level_help_mentions_sweep(self):
        self.assertIn("sweep", run("--help").stdout)

    def test_version(self):
        r = run("sweep", "--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout.strip(), r"^qparity \d+\.\d+\.\d+$")


class Console(unittest.TestCase):
    def test_summary_table_boundaries_and_points(self):
        r = run("sweep", *SMALL, "--threads", "2")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stderr, "", "no progress bar when stderr is not a terminal")
        out = r.stdout
        self.assertIn("qparity sweep: 16 points (2 series x 8 k values from 0.005 to 0.05, "
                      "log-spaced), rows 2, 2 threads", out)
        self.assertIn("outcome by k range", out)
        for column in ("series", "k from", "k to", "points", "outcome"):
            self.assertIn(column, out)
        self.assertIn("backend=qnnpack", out)
        self.assertIn("backend=onednn", out)
        self.assertIn("threshold_clamp@weight+threshold_clamp@output", out)
        self.assertIn("grid_mismatch@weight", out)
        self.assertIn("boundaries (between sampled k; --refine bisects to adjacent float32)", out)
        self.assertRegex(out, r"backend=qnnpack\s+k 0\.0\d+ -> 0\.0\d+: "
                              r"threshold_clamp@weight\+threshold_clamp@output -> grid_mismatch@weight")
        for column in ("bins diff", "fp32 diff", "max dq", "first mismatch"):
            self.assertIn(column, out)
        table = out.split("\npoints\n", 1)[1].splitlines()[1:]  # below the column header
        self.assertEqual(len(table), 16, "one line per point")
        for line in table:
            self.assertRegex(line, r"^  backend=(qnnpack|onednn)\s+0\.0\d+\s+\d+\s+\d+\s+\d+\s+"
                                   r"(\[0,\d,0,\d+\]|-)\s+\S+$")

    def test_refined_boundaries(self):
        r = run("sweep", *SMALL, "--refine")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("boundaries (refined to adjacent float32 values of k)", r.stdout)
        self.assertRegex(r.stdout, r"k 0\.015554999 -> 0\.0155549999: .* \(\d+ runs\)")

    def test_no_boundaries_section_when_outcome_never_changes(self):
        r = run("sweep", "--k", "1:2:3", "--rows", "1", "--observer", "plain")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("boundaries", r.stdout)

    def test_large_sweep_points_table_is_elided(self):
        r = run("sweep", "--k", "0.5:2:201", "--rows", "1", "--backend", "qnnpack",
                "--observer", "plain")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("201 points: see --json or --csv for every point", r.stdout)

    def test_no_diagnosis_outcomes(self):
        r = run("sweep", "--k", "0.5:2:3", "--rows", "1", "--backend", "qnnpack",
                "--observer", "fused,plain", "--no-diagnosis")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("diverge", r.stdout)
        self.assertIn("agree", r.stdout)
        self.assertNotIn("@", r.stdout)

    def test_threads_shown(self):
        r = run("sweep", "--k", "1:2:2", "--rows", "1", "--threads", "3")
        self.assertIn(", 3 threads", r.stdout)


class ExitCodes(unittest.TestCase):
    def test_zero_when_every_point_agrees(self):
        r = run("sweep", "--observer", "plain", "--backend", "qnnpack,onednn,fbgemm",
                "--k", "0.001:1000:7", "--log", "--rows", "2")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stderr, "")

    def test_one_when_some_point_diverges(self):
        r = run("sweep", "--observer", "plain,fused", "--backend", "qnnpack",
                "--k", "0.5:2:3", "--rows", "2")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(r.stderr, "")
        r = run("sweep", "--k", "1:1:1", "--rows", "1")  # the seed itself on fbgemm
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)

    def test_one_when_the_engine_refuses_every_point(self):
        # onednn rejects affine weights: refused points are no agreement.
        r = run("sweep", "--backend", "onednn", "--weight-qscheme", "per_tensor_affine",
                "--k", "1:2:2", "--rows", "1")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("refused", r.stdout)


class Files(unittest.TestCase):
    def run_both(self, *args):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        d = tmp.name
        jpath, cpath = os.path.join(d, "s.json"), os.path.join(d, "s.csv")
        r = run("sweep", *args, "--json", jpath, "--csv", cpath)
        self.assertIn(r.returncode, (0, 1), r.stderr)
        self.assertEqual(sorted(os.listdir(d)), ["s.csv", "s.json"], "no temporary file may remain")
        return r, load_json(jpath), read_text(cpath)

    def test_json_structure(self):
        args = [*SMALL, "--observer", "fused,plain", "--weight-qscheme",
                "per_tensor_symmetric,per_tensor_affine", "--refine"]
        r, doc, _ = self.run_both(*args)
        self.assertEqual(doc["schema"], "qparity.sweep/1")
        self.assertRegex(doc["qparity_version"], r"^\d+\.\d+\.\d+$")
        self.assertIn("sweep", doc["command_line"])
        self.assertIn("--refine", doc["command_line"])
        self.assertEqual(doc["k"], {"start": 0.005, "stop": 0.05, "count": 8, "log": True})
        self.assertEqual(doc["rows"], 2)
        self.assertIs(doc["diagnosis"], True)
        points = doc["points"]
        self.assertEqual(len(points), 2 * 2 * 2 * 8)
        series = []
        for p in points:
            self.assertEqual(tuple(p), POINT_KEYS)
            self.assertTrue(is_float32(p["k"]), p["k"])
            self.assertEqual(p["rows"], 2)
            self.assertIn(p["backend"], ("qnnpack", "onednn"))
            self.assertIsInstance(p["reduce_range"], bool)
            if p["series"] not in series:
                series.append(p["series"])
            if p["outcome"] == "refused":
                self.assertEqual(p["backend"], "onednn")
                self.assertEqual(p["weight_qscheme"], "per_tensor_affine")
                self.assertIsInstance(p["error"], str)
            else:
                self.assertIsNone(p["error"])
            if p["bin_mismatch_count"] or p["fp32_mismatch_count"]:
                self.assertNotEqual(p["outcome"], "agree")
                m = p["first_mismatch"]
                self.assertEqual(sorted(m), ["actual_q", "error_fp32", "expected_q", "index"])
                self.assertEqual(len(m["index"]), 4)
            else:
                self.assertIsNone(p["first_mismatch"])
                self.assertIn(p["outcome"], ("agree", "refused"))
        self.assertEqual(len(series), 8)
        self.assertIn("backend=onednn observer=plain weight_qscheme=per_tensor_affine", series)
        for s in series:  # k ascending within a series
            ks = [p["k"] for p in points if p["series"] == s]
            self.assertEqual(ks, sorted(ks))
            self.assertEqual(len(ks), 8)
        ranges = doc["summary"]["ranges"]
        self.assertEqual(sum(g["points"] for g in ranges), len(points))
        for g in ranges:
            self.assertEqual(sorted(g), ["k_first", "k_last", "outcome", "points", "series"])
            self.assertLessEqual(g["k_first"], g["k_last"])
        bounds = doc["summary"]["boundaries"]
        self.assertTrue(bounds)
        for b in bounds:
            self.assertEqual(sorted(b), ["k_high", "k_low", "outcome_high", "outcome_low",
                                         "refined", "refinement_runs", "series"])
            self.assertIs(b["refined"], True)
            self.assertGreater(b["refinement_runs"], 0)
            self.assertLess(b["k_low"], b["k_high"])
            self.assertNotEqual(b["outcome_low"], b["outcome_high"])

    def test_unrefined_boundaries_are_sampled_points(self):
        _, doc, _ = self.run_both(*SMALL)
        ks = {(p["series"], p["k"]): p["outcome"] for p in doc["points"]}
        for b in doc["summary"]["boundaries"]:
            self.assertIs(b["refined"], False)
            self.assertEqual(b["refinement_runs"], 0)
            self.assertEqual(ks[(b["series"], b["k_low"])], b["outcome_low"])
            self.assertEqual(ks[(b["series"], b["k_high"])], b["outcome_high"])

    def test_csv_header_and_one_row_per_point(self):
        _, doc, text = self.run_both(*SMALL, "--observer", "fused,plain", "--weight-qscheme",
                                     "per_tensor_symmetric,per_tensor_affine")
        rows = list(csv.reader(io.StringIO(text)))
        self.assertEqual(rows[0], CSV_HEADER)
        self.assertEqual(len(rows) - 1, len(doc["points"]))
        for row, p in zip(rows[1:], doc["points"]):
            self.assertEqual(len(row), len(CSV_HEADER), row)
            rec = dict(zip(CSV_HEADER, row))
            self.assertEqual(rec["series"], p["series"])
            self.assertEqual(float(rec["k"]), p["k"])
            self.assertEqual(rec["outcome"], p["outcome"])
            self.assertEqual(rec["reduce_range"], "on" if p["reduce_range"] else "off")
            for key in ("bin_mismatch_count", "fp32_mismatch_count", "max_abs_delta_q", "rows"):
                self.assertEqual(int(rec[key]), p[key], key)
            m = p["first_mismatch"]
            if m:
                self.assertEqual([int(rec[c]) for c in ("first_n", "first_c", "first_h", "first_w")],
                                 m["index"])
                self.assertEqual(int(rec["first_expected_q"]), m["expected_q"])
                self.assertEqual(int(rec["first_actual_q"]), m["actual_q"])
            else:
                self.assertEqual(rec["first_n"], "")
            self.assertEqual(rec["error"], p["error"] or "")

    def test_existing_file_is_replaced_whole_or_kept(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "keep.json")
            with open(path, "w") as f:
                f.write("previous")
            r = run("sweep", "--k", "2:1:3", "--json", path)
            self.assertEqual(r.returncode, 2)
            self.assertEqual(read_text(path), "previous", "a failed run must not touch the file")
            r = run("sweep", "--k", "1:2:2", "--rows", "1", "--json", path)
            self.assertEqual(r.returncode, 1)
            self.assertEqual(load_json(path)["schema"], "qparity.sweep/1")
            self.assertEqual(os.listdir(d), ["keep.json"])

    def test_lists_skip_empty_items_and_options_repeat(self):
        # CLI11 splits at commas and skips empty items (deliberately accepted); a repeated list
        # option adds to the list.
        _, doc, _ = self.run_both("--k", "1:2:2", "--rows", "1", "--backend", "qnnpack,",
                                  "--backend", "onednn", "--observer", "plain,,fused")
        self.assertEqual(len(doc["points"]), 8)

    def test_duplicate_list_values_count_once(self):
        _, doc, _ = self.run_both("--k", "1:2:2", "--rows", "1", "--backend", "qnnpack,qnnpack",
                                  "--observer", "plain,plain")
        self.assertEqual(len(doc["points"]), 2)


class BadInput(unittest.TestCase):
    def assert_usage_error(self, argv, *fragments):
        """argv fails with exit 2, one stderr line containing every fragment, no stdout, and
        neither the --json nor the --csv file (nor a temporary) appears."""
        with tempfile.TemporaryDirectory() as d:
            extra = []
            if "--json" not in argv:
                extra += ["--json", os.path.join(d, "o.json")]
            if "--csv" not in argv:
                extra += ["--csv", os.path.join(d, "o.csv")]
            r = run("sweep", *extra, *argv)
            self.assertEqual(r.returncode, 2, f"{argv}: {r.stdout}{r.stderr}")
            lines = r.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, f"{argv}: stderr must be one line: {r.stderr!r}")
            for fragment in fragments:
                self.assertIn(fragment, lines[0], argv)
            self.assertEqual(r.stdout, "", f"{argv}: nothing on stdout for a usage error")
            self.assertEqual(os.listdir(d), [], f"{argv}: a file was left behind")

    def test_two_spellings_of_one_output_file(self):
        with tempfile.TemporaryDirectory() as d:
            r = run("sweep", "--k", "1:2:2", "--rows", "1", "--json", "./o.out", "--csv", "o.out",
                    cwd=d)
            self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
            self.assertIn("--csv", r.stderr)
            self.assertEqual(os.listdir(d), [])

    def test_bad_k_range(self):
        for value, why in (("10:1:5", "STOP is smaller than START"),
                           ("1:10:0", "COUNT must be at least 1"),
                           ("1:10:-3", "COUNT must be at least 1"),
                           ("1:10:10000000", "COUNT 10000000"),
                           ("1:10:99999999999999999999", "too large"),
                           ("1:1:2", "STOP > START"),
                           ("a:10:5", "START 'a'"), ("1:b:5", "STOP 'b'"),
                           ("1:10:c", "COUNT 'c'"), ("1:10:2.5", "COUNT '2.5'"),
                           ("1:10", "START:STOP:COUNT"), ("1:10:5:6", "START:STOP:COUNT"),
                           ("1,10,5", "START '1,10,5'"), ("", "START ''"),
                           # CLI11 splits at the colons and skips empty parts: two parts
                           (":10:5", "START:STOP:COUNT"), ("1::5", "START:STOP:COUNT"),
                           ("1:10:", "START:STOP:COUNT"), ("1:10:0x5", "COUNT '0x5'"),
                           ("nan:10:5", "not a finite"), ("1:nan:5", "not a finite"),
                           ("inf:1e9:5", "not a finite"), ("1:inf:5", "not a finite"),
                           ("-inf:1:5", "not a finite"), ("1:1e999:5", "not a finite"),
                           ("0:10:5", "k must be > 0"), ("-1:10:5", "k must be > 0"),
                           ("1:1e39:3", "unusable"), ("1e-300:1:3", "unusable")):
            self.assert_usage_error(["--k", value], "--k", why)

    def test_log_needs_positive_start(self):
        for value in ("0:10:5", "-1:10:5", "-0:10:5", "-10:-1:5"):
            self.assert_usage_error(["--k", value, "--log"], "--k", "--log needs START > 0")

    def test_unknown_list_values(self):
        for option, value, bad in (("--backend", "qnnpack,tpu", "tpu"),
                                   ("--backend", "QNNPACK", "QNNPACK"),
                                   ("--backend", "", "''"),
                                   ("--observer", "fused,minmax", "minmax"),
                                   ("--weight-qscheme", "per_tensor_symmetric,per_channel",
                                    "per_channel"),
                                   ("--weight-pattern", "identity,random", "random"),
                                   ("--reduce-range", "off,yes", "yes"),
                                   ("--reduce-range", "true", "true")):
            self.assert_usage_error([option, value], option, bad)

    def test_bad_threads(self):
        for value, why in (("0", "[1, 1024]"), ("-1", "[1, 1024]"), ("2000", "[1, 1024]"),
                           ("x", "not an integer"), ("1.5", "not an integer"),
                           ("", "not an integer")):
            self.assert_usage_error(["--threads", value], "--threads", why)

    def test_bad_rows(self):
        for value, why in (("0", "at least 1"), ("-5", "at least 1"), ("x", "not an integer"),
                           ("2.5", "not an integer"), ("99999999999999999999", "too large"),
                           ("1000000000000", "memory")):
            self.assert_usage_error(["--rows", value], "--rows", why)

    def test_unknown_flag_and_missing_value(self):
        self.assert_usage_error(["--frobnicate"], "frobnicate")
        self.assert_usage_error(["--k"], "--k")

    def test_unwritable_json_and_csv(self):
        for option in ("--json", "--csv", "--html"):
            with tempfile.TemporaryDirectory() as d:
                self.assert_usage_error([option, os.path.join(d, "missing", "o")], option,
                                        "does not exist")
                self.assertEqual(os.listdir(d), [])
                self.assert_usage_error([option, d], option, "directory")
                self.assert_usage_error([option, ""], option)
                self.assert_usage_error([option, "/proc/qparity-sweep-test.out"], option)
                if os.geteuid() != 0:  # root writes anywhere; the read-only case needs a user
                    locked = os.path.join(d, "locked")
                    os.mkdir(locked)
                    os.chmod(locked, stat.S_IRUSR | stat.S_IXUSR)
                    self.assert_usage_error([option, os.path.join(locked, "o")], option)
                    os.chmod(locked, stat.S_IRWXU)

    def test_json_and_csv_to_the_same_file(self):
        with tempfile.TemporaryDirectory() as d:
            same = os.path.join(d, "same.out")
            self.assert_usage_error(["--json", same, "--csv", same], "--csv", "--json")
            self.assertEqual(os.listdir(d), [])

    def test_one_bad_output_leaves_the_other_unwritten(self):
        with tempfile.TemporaryDirectory() as d:
            good = os.path.join(d, "good.json")
            self.assert_usage_error(["--json", good, "--csv", os.path.join(d, "no", "x.csv")],
                                    "--csv")
            self.assertEqual(os.listdir(d), [])


def main():
    global QPARITY
    parser = argparse.ArgumentParser()
    parser.add_argument("--qparity", required=True)
    args, rest = parser.parse_known_args()
    QPARITY = os.path.abspath(args.qparity)
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)


if __name__ == "__main__":
    main()
