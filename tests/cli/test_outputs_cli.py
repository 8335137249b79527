#!/usr/bin/python3
"""Hostile use of qparity's command line and output files (issue 9).

Usage: test_outputs_cli.py --qparity PATH [unittest options]

- Device nodes, FIFOs and /dev/stdout take a stream; they are never replaced by a file.
- One command per invocation; options go after it; `--` ends the options; `--json=` is refused.
- Outputs are all or nothing: when one fails, no other is replaced.
- No temporary is left behind by SIGINT, SIGTERM, SIGKILL or a closed pipe.
- Output files follow the umask (new) or keep the mode of the file they replace.
- A file name that is not UTF-8 is recorded in the reports as bash $'...' quoting.
- A failed write to stdout is an error (exit 2).
"""
import argparse
import json
import os
import resource
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

QPARITY = None
QUICK = ["--rows", "1", "--no-diagnosis"]  # a seed run of a few milliseconds


def run(*args, cwd=None, **kwargs):
    kwargs.setdefault("capture_output", True)
    return subprocess.run([QPARITY, *args], timeout=300, cwd=cwd, **kwargs)


def text(data):
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data


def load_json(path):
    with open(path) as f:
        return json.load(f)


def leftovers(directory):
    return sorted(os.listdir(directory))


class OutputTest(unittest.TestCase):
    def assert_error(self, r, *fragments):
        """Exit 2 and exactly one stderr line holding every fragment."""
        stderr = text(r.stderr)
        self.assertEqual(r.returncode, 2, f"{text(r.stdout)}{stderr}")
        lines = stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, f"stderr must be one line: {stderr!r}")
        for fragment in fragments:
            self.assertIn(fragment, lines[0])


class DeviceNodes(OutputTest):
    """Item 1: a non-regular file takes a stream and stays what it was."""

    def assert_char_device(self, path):
        self.assertTrue(stat.S_ISCHR(os.stat(path).st_mode), f"{path} is no longer a device")

    def test_dev_null_stays_a_device(self):
        for command in (["seed", *QUICK], ["explain", "--rows", "1"],
                        ["sweep", "--k", "1:2:2", "--rows", "1", "--no-diagnosis"]):
            extra = ["--csv", "/dev/null"] if command[0] == "sweep" else []
            r = run(*command, "--json", "/dev/null", "--html", "/dev/null", *extra)
            self.assertEqual(r.returncode, 1, text(r.stderr))
            self.assertEqual(r.stderr, b"")
            self.assert_char_device("/dev/null")

    def test_dev_full_is_a_write_error_and_stays_a_device(self):
        with tempfile.TemporaryDirectory() as d:
            kept = os.path.join(d, "kept.json")
            with open(kept, "w") as f:
                f.write("previous")
            r = run("seed", *QUICK, "--json", kept, "--html", "/dev/full")
            self.assert_error(r, "--html", "/dev/full", "No space left on device")
            self.assert_char_device("/dev/full")
            with open(kept) as f:
                self.assertEqual(f.read(), "previous", "all or nothing: --json must be kept")
            self.assertEqual(leftovers(d), ["kept.json"])

    def test_fifo_gets_the_report_and_stays_a_fifo(self):
        with tempfile.TemporaryDirectory() as d:
            fifo = os.path.join(d, "pipe")
            os.mkfifo(fifo)
            received = []
            def read_fifo():
                with open(fifo, "rb") as f:
                    received.append(f.read())

            reader = threading.Thread(target=read_fifo)
            reader.start()
            r = run("seed", *QUICK, "--json", fifo)
            reader.join(60)
            self.assertEqual(r.returncode, 1, text(r.stderr))
            self.assertTrue(stat.S_ISFIFO(os.stat(fifo).st_mode))
            self.assertEqual(json.loads(received[0])["schema"], "qparity.seed/1")
            self.assertEqual(leftovers(d), ["pipe"])

    def test_dev_stdout_follows_the_console_report(self):
        # stdout a pipe
        r = run("seed", *QUICK, "--json", "/dev/stdout")
        self.assertEqual(r.returncode, 1, text(r.stderr))
        console, _, doc = text(r.stdout).partition("\n{\n")
        self.assertIn("RESULT: DIVERGE", console)
        self.assertEqual(json.loads("{\n" + doc)["schema"], "qparity.seed/1")
        # stdout a regular file: appended after the console text, in the same file
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "out.txt")
            with open(out, "wb") as f:
                inode = os.fstat(f.fileno()).st_ino
                r = run("seed", *QUICK, "--json", "/dev/stdout", stdout=f, stderr=subprocess.PIPE,
                        capture_output=False)
            self.assertEqual(r.returncode, 1, text(r.stderr))
            self.assertEqual(os.stat(out).st_ino, inode, "the file must not be replaced")
            with open(out) as f:
                console, _, doc = f.read().partition("\n{\n")
            self.assertIn("RESULT: DIVERGE", console)
            self.assertEqual(json.loads("{\n" + doc)["schema"], "qparity.seed/1")
            self.assertEqual(leftovers(d), ["out.txt"])

    def test_symlink_to_a_file_replaces_the_file_and_keeps_the_link(self):
        with tempfile.TemporaryDirectory() as d:
            real = os.path.join(d, "real.json")
            link = os.path.join(d, "link.json")
            with open(real, "w") as f:
                f.write("previous")
            os.symlink("real.json", link)
            r = run("seed", *QUICK, "--json", link)
            self.assertEqual(r.returncode, 1, text(r.stderr))
            self.assertTrue(os.path.islink(link))
            self.assertEqual(load_json(real)["schema"], "qparity.seed/1")
            self.assertEqual(leftovers(d), ["link.json", "real.json"])

    def test_block_devices_sockets_and_dangling_links_are_refused(self):
        with tempfile.TemporaryDirectory() as d:
            dangling = os.path.join(d, "dangling")
            os.symlink("nowhere/x.json", dangling)
            self.assert_error(run("seed", *QUICK, "--json", dangling), "--json", "does not exist")
            block = next((p for p in ("/dev/loop0", "/dev/sda", "/dev/vda", "/dev/nvme0n1")
                          if os.path.exists(p) and stat.S_ISBLK(os.stat(p).st_mode)), None)
            if block:
                self.assert_error(run("seed", *QUICK, "--json", block), "--json", "block device")
            self.assertEqual(leftovers(d), ["dangling"])


class OneCommand(OutputTest):
    """Item 2 and the `--` / `--json=` parts of item 9."""

    def test_chained_commands_are_refused(self):
        with tempfile.TemporaryDirectory() as d:
            a = os.path.join(d, "a.json")
            for argv, fragments in (
                    (["seed", "--rows", "1", "--json", a, "explain"], ("one command", "seed",
                                                                       "explain")),
                    (["seed", "sweep"], ("one command", "seed", "sweep")),
                    (["explain", "--rows", "1", "seed", "--json", a], ("one command",)),
                    (["sweep", "--rows", "1", "explain"], ("one command",)),
                    (["seed", "model"], ("model",))):
                r = run(*argv)
                self.assert_error(r, *fragments)
                self.assertEqual(r.stdout, b"", argv)
            self.assertEqual(leftovers(d), [])

    def test_options_before_a_command_are_refused(self):
        for argv in (["--rows", "1", "sweep", "--k", "1:2:2"], ["--rows", "abc", "--k", "nan",
                                                                 "--backend", "bogus", "sweep"],
                     ["--no-diagnosis", "explain"], ["--rows", "2", "seed"]):
            r = run(*argv)
            self.assertEqual(r.returncode, 2, argv)
            self.assertEqual(len(text(r.stderr).strip().splitlines()), 1, r.stderr)
            self.assertEqual(r.stdout, b"", argv)
        self.assert_error(run("--rows", "1", "sweep"), "--rows", "before the command 'sweep'")

    def test_double_dash_ends_the_options(self):
        with tempfile.TemporaryDirectory() as d:
            for command in ("seed", "explain", "sweep"):
                r = run(command, "--rows", "1", "--", "--json", "x.json", cwd=d)
                self.assert_error(r, "after '--'", "--json")
                self.assertEqual(r.stdout, b"")
            r = run("seed", *QUICK, "--", cwd=d)  # a `--` with nothing after it is harmless
            self.assertEqual(r.returncode, 1, text(r.stderr))
            self.assertEqual(leftovers(d), [])

    def test_empty_value_after_equals_is_refused(self):
        with tempfile.TemporaryDirectory() as d:
            for argv in (["seed", "--json=", "--rows", "1"], ["--html=", "--rows", "1"],
                         ["sweep", "--csv=", "--k", "1:2:2"], ["explain", "--index=", "--rows", "1"],
                         ["seed", "--k=", "--rows", "1"]):
                r = run(*argv, cwd=d)
                option = next(a for a in argv if a.endswith("="))[:-1]
                self.assert_error(r, option, "no value after '='")
                self.assertEqual(r.stdout, b"")
            self.assertEqual(leftovers(d), [], "no file named after the next option")


class AllOrNothing(OutputTest):
    """Item 4: every output is written to its temporary before any is moved into place."""

    def test_a_file_too_large_to_write_leaves_every_output_as_it_was(self):
        def small_file_limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
            resource.setrlimit(resource.RLIMIT_FSIZE, (40000, 40000))

        with tempfile.TemporaryDirectory() as d:
            json_path, html_path = os.path.join(d, "r.json"), os.path.join(d, "r.html")
            for path in (json_path, html_path):
                with open(path, "w") as f:
                    f.write("previous")
            r = run("seed", *QUICK, "--json", json_path, "--html", html_path,
                    preexec_fn=small_file_limit)
            self.assert_error(r, "--html", "r.html", "too large")
            for path in (json_path, html_path):
                with open(path) as f:
                    self.assertEqual(f.read(), "previous", path)
            self.assertEqual(r.stdout, b"", "no console report when the files fail")
            self.assertEqual(leftovers(d), ["r.html", "r.json"])

    def test_sweep_outputs_are_all_or_nothing(self):
        with tempfile.TemporaryDirectory() as d:
            csv_path = os.path.join(d, "p.csv")
            r = run("sweep", "--k", "1:2:2", "--rows", "1", "--no-diagnosis", "--csv", csv_path,
                    "--json", "/dev/full")
            self.assert_error(r, "--json", "/dev/full")
            self.assertEqual(leftovers(d), [])


class Interrupted(OutputTest):
    """Item 5: temporaries exist only while the reports are written, and never outlive it."""

    LONG = ["seed", "--rows", "60000", "--weight-pattern", "dense"]

    def interrupt(self, sig, delay):
        with tempfile.TemporaryDirectory() as d:
            p = subprocess.Popen([QPARITY, *self.LONG, "--json", os.path.join(d, "r.json"),
                                  "--html", os.path.join(d, "r.html")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(delay)
            self.assertEqual(leftovers(d), [], "nothing may exist before the reports are written")
            p.send_signal(sig)
            p.wait(120)
            self.assertEqual(p.returncode, -sig)
            self.assertEqual(leftovers(d), [])

    def test_sigint_sigterm_sigkill(self):
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            self.interrupt(sig, 0.5)

    def test_closed_pipe_is_a_write_error(self):
        with tempfile.TemporaryDirectory() as d:
            p = subprocess.Popen([QPARITY, "seed", *QUICK, "--json", os.path.join(d, "r.json")],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            p.stdout.close()  # as `| true` does
            stderr = p.stderr.read().decode()
            p.stderr.close()
            p.wait(60)
            self.assertEqual(p.returncode, 2, stderr)
            self.assertIn("stdout", stderr)
            self.assertIn("Broken pipe", stderr)
            self.assertEqual(leftovers(d), [])

    def test_no_temporary_after_many_runs(self):
        with tempfile.TemporaryDirectory() as d:
            for i in range(5):
                r = run("seed", *QUICK, "--json", os.path.join(d, "r.json"), "--html",
                        os.path.join(d, "r.html"))
                self.assertEqual(r.returncode, 1)
            self.assertEqual(leftovers(d), ["r.html", "r.json"])


class FileNames(OutputTest):
    """Item 6 and the long-name part of item 9."""

    def test_name_that_is_not_utf8_is_recorded_escaped(self):
        with tempfile.TemporaryDirectory() as d:
            html = os.path.join(d.encode(), b"r\xe9sum\xe9.html")
            json_path = os.path.join(d, "r.json")
            r = run("seed", *QUICK, "--html", html, "--json", json_path)
            self.assertEqual(r.returncode, 1, text(r.stderr))
            self.assertTrue(os.path.exists(html))
            line = load_json(json_path)["command_line"]
            self.assertIn("$'", line)
            self.assertIn(r"r\xe9sum\xe9.html'", line)
            with open(html, "rb") as f:
                f.read().decode("utf-8")  # the page is valid UTF-8

    def test_name_with_a_newline_keeps_the_command_line_one_line(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "two\nlines.json")
            r = run("seed", *QUICK, "--json", path)
            self.assertEqual(r.returncode, 1, text(r.stderr))
            line = load_json(path)["command_line"]
            self.assertNotIn("\n", line)
            self.assertIn(r"two\nlines.json'", line)

    def test_names_up_to_255_bytes(self):
        with tempfile.TemporaryDirectory() as d:
            for length in (244, 250, 255):
                name = "n" * (length - 5) + ".json"
                r = run("seed", *QUICK, "--json", os.path.join(d, name))
                self.assertEqual(r.returncode, 1, text(r.stderr))
                self.assertIn(name, leftovers(d))
            self.assertEqual(len(leftovers(d)), 3)
            self.assert_error(run("seed", *QUICK, "--json", os.path.join(d, "n" * 256)), "--json",
                              "too long")


class Modes(OutputTest):
    """Item 9: new reports follow the umask; a replaced report keeps its mode."""

    def test_umask_and_existing_mode(self):
        with tempfile.TemporaryDirectory() as d:
            for umask, expected in ((0o077, 0o600), (0o022, 0o644), (0o002, 0o664)):
                path = os.path.join(d, f"u{umask:o}.json")
                r = run("seed", *QUICK, "--json", path, preexec_fn=lambda u=umask: os.umask(u))
                self.assertEqual(r.returncode, 1)
                self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), expected, oct(umask))
            kept = os.path.join(d, "kept.json")
            with open(kept, "w") as f:
                f.write("previous")
            os.chmod(kept, 0o640)
            r = run("seed", *QUICK, "--json", kept, preexec_fn=lambda: os.umask(0))
            self.assertEqual(r.returncode, 1)
            self.assertEqual(stat.S_IMODE(os.stat(kept).st_mode), 0o640)
            self.assertEqual(load_json(kept)["schema"], "qparity.seed/1")


class Stdout(OutputTest):
    """Item 9: a failed write to stdout is an error, and no report file appears."""

    def test_full_and_closed_stdout(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "r.json")
            with open("/dev/full", "wb") as full:
                r = run("seed", *QUICK, "--json", out, stdout=full, stderr=subprocess.PIPE,
                        capture_output=False)
            self.assert_error(r, "stdout", "No space left on device")
            r = run("seed", *QUICK, "--json", out, stdout=None, stderr=subprocess.PIPE,
                    capture_output=False, preexec_fn=lambda: os.close(1))
            self.assert_error(r, "stdout", "Bad file descriptor")
            self.assertEqual(leftovers(d), [])
            for argv in (["--help"], ["seed", "--help"], ["--version"]):
                with open("/dev/full", "wb") as full:
                    r = run(*argv, stdout=full, stderr=subprocess.PIPE, capture_output=False)
                self.assert_error(r, "stdout")


def main():
    global QPARITY
    parser = argparse.ArgumentParser()
    parser.add_argument("--qparity", required=True)
    args, rest = parser.parse_known_args()
    QPARITY = os.path.abspath(args.qparity)
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)


if __name__ == "__main__":
    main()
