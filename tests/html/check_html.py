#!/usr/bin/python3
"""Renders qparity's HTML reports and checks them in headless Chromium.

Runs `qparity seed`, `qparity explain` and `qparity sweep` (and, with --model-report, `qparity
model` on a generated model) with --html into a temporary directory, opens each page in Debian's
headless Chromium through Selenium and chromedriver, and checks that

  * the browser logs no console error (no SEVERE entry),
  * the page makes no network request other than loading its own file:// document,
  * the raw HTML has no script, no external reference (src=, url(), @import, http(s) links),
  * every plot (by svg id) and table (by table id) is present, rendered and not empty,
  * the seed default's staircase marks the divergent column w = 128 (fake-quant 128, int8 127)
    and its zoom shows the int8 bin 127 twice,
  * the page fits a narrow (phone-width) window without horizontal scrolling,
  * text is escaped (a report whose file name contains <&> shows it literally),
  * the model report draws one chart column per row of its layer table, a mismatch-share bar for
    exactly the layers whose bins differ, and marks the same first divergent layer in both.

A full-page PNG screenshot of each page is saved in --artifacts (default ./html-artifacts).
Exit code 0 when every check passes, 1 otherwise: each failed check is printed, and a missing
Chromium, chromedriver or Selenium is named.

Needs Debian packages: chromium chromium-driver python3-selenium (and a font, e.g.
fonts-liberation or fonts-dejavu-core, for readable screenshots).
"""

import argparse
import base64
import json
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

SWEEP_ARGS = ["sweep", "--k", "0.001:1000:40", "--log", "--backend", "qnnpack,onednn",
              "--observer", "fused,plain", "--rows", "8", "--threads", "2"]


class Checker:
    def __init__(self, qparity):
        self.qparity = qparity
        self.failures = []
        self.passed = 0

    def check(self, page, condition, message):
        if condition:
            self.passed += 1
        else:
            self.failures.append(f"{page}: {message}")
            print(f"  FAIL {message}", flush=True)


def render(qparity, workdir, name, args, expect_codes):
    """Runs qparity with --html and returns (path, command line)."""
    path = workdir / name
    command = [qparity] + args + ["--html", str(path)]
    proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=600, check=False)
    if proc.returncode not in expect_codes:
        raise RuntimeError(f"{' '.join(command)} exited {proc.returncode} "
                           f"(expected {expect_codes}): {proc.stderr.strip()}")
    if not path.is_file():
        raise RuntimeError(f"{' '.join(command)} wrote no {path}")
    return path, shlex.join(command)  # qparity shell-quotes the line it records


def make_driver(user_data_dir):
    # Selenium reaches chromedriver at "localhost": say so plainly when that name does not
    # resolve (a bare chroot without /etc/hosts), instead of failing with "can not connect".
    try:
        socket.getaddrinfo("localhost", None)
    except OSError as e:
        print("check_html: FAIL: 'localhost' does not resolve (%s); Selenium needs it to reach "
              "chromedriver (is /etc/hosts missing?)" % e, file=sys.stderr)
        sys.exit(1)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        print("check_html: FAIL: python3-selenium is not installed "
              "(apt-get install python3-selenium)", file=sys.stderr)
        sys.exit(1)
    for tool in (CHROMIUM, CHROMEDRIVER):
        if not Path(tool).exists():
            print(f"check_html: FAIL: {tool} is missing (apt-get install chromium chromium-driver)",
                  file=sys.stderr)
            sys.exit(1)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--hide-scrollbars",
                 "--force-device-scale-factor=1", "--window-size=1280,900",
                 f"--user-data-dir={user_data_dir}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = Service(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(service=service, options=options)
    # The first tab may still be loading Chromium's own new-tab page (chrome:// requests):
    # settle on about:blank and drop those log entries before any report is opened.
    driver.get("about:blank")
    time.sleep(0.5)
    driver.get_log("browser")
    driver.get_log("performance")
    return driver


def static_checks(c, page, html):
    lower = html.lower()
    c.check(page, lower.startswith("<!doctype html>"), "starts with <!DOCTYPE html>")
    c.check(page, "<script" not in lower, "contains no <script>")
    c.check(page, " src=" not in lower, "no src= attribute (nothing loaded)")
    c.check(page, "url(" not in lower and "@import" not in lower, "CSS loads nothing (no url(), @import)")
    external = [part for part in lower.split("href=\"")[1:] if not part.startswith("#")]
    c.check(page, not external, f"every href is an in-page anchor (found {len(external)} others)")
    links = lower.replace("xmlns=\"http://www.w3.org/2000/svg\"", "")
    c.check(page, "http://" not in links and "https://" not in links, "no http(s):// reference")
    c.check(page, "content-security-policy" in lower and "default-src 'none'" in lower,
            "a Content-Security-Policy forbids fetches")


def browser_checks(c, driver, page, path):
    url = path.resolve().as_uri()
    driver.get_log("browser")  # drop anything logged before this page
    driver.get_log("performance")
    driver.get(url)  # returns once the document has loaded
    time.sleep(0.3)  # and give any late fetch (a favicon, a lazy resource) time to show up
    severe = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    c.check(page, not severe, f"no console errors (got {[e.get('message') for e in severe]})")
    requests = []
    for entry in driver.get_log("performance"):
        try:
            message = json.loads(entry["message"])["message"]
        except (KeyError, ValueError):
            continue
        if message.get("method") == "Network.requestWillBeSent":
            requests.append(message["params"]["request"]["url"])
    others = [u for u in requests if unquote(u) != unquote(url)]
    c.check(page, not others, f"no network request besides the document (got {others})")
    c.check(page, driver.execute_script("return document.scripts.length") == 0, "no scripts in the DOM")
    c.check(page, driver.execute_script(
        "return [...document.styleSheets].every(s => s.href === null)"), "only inline style sheets")


def element_checks(c, driver, page, svgs, tables):
    for svg in svgs:
        info = driver.execute_script(
            "const e = document.getElementById(arguments[0]);"
            "if (!e) return null; const r = e.getBoundingClientRect();"
            "return {tag: e.tagName.toLowerCase(), w: r.width, h: r.height,"
            "        marks: e.querySelectorAll('path,rect,circle,line').length};", svg)
        c.check(page, info is not None, f"<svg id={svg}> exists")
        if info:
            c.check(page, info["tag"] == "svg", f"#{svg} is an <svg>")
            c.check(page, info["w"] > 100 and info["h"] > 80,
                    f"#{svg} is rendered ({info['w']:.0f}x{info['h']:.0f} px)")
            c.check(page, info["marks"] > 10, f"#{svg} draws marks ({info['marks']})")
    for table in tables:
        rows = driver.execute_script(
            "const t = document.getElementById(arguments[0]);"
            "if (!t || t.tagName !== 'TABLE') return -1;"
            "return [...t.tBodies].reduce((n, b) => n + b.rows.length, 0);", table)
        c.check(page, rows > 0, f"<table id={table}> exists and has rows ({rows})")


def narrow_check(c, driver, page):
    driver.set_window_size(420, 900)
    overflow = driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
    c.check(page, overflow <= 1, f"fits a 420 px wide window (horizontal overflow {overflow} px)")
    driver.set_window_size(1280, 900)


def screenshot(driver, target):
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    width = int(min(max(size["width"], 1280), 2000))
    height = int(min(size["height"], 16000))
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True, "fromSurface": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
    target.write_bytes(base64.b64decode(shot["data"]))


def js(driver, script, *args):
    return driver.execute_script(script, *args)


def check_seed(c, driver, page, command_line):
    element_checks(c, driver, page, ["staircase", "staircase-zoom", "dq-histogram"],
                   ["qparams", "trace", "fixes", "dq-table", "engine-table", "scenario"])
    c.check(page, js(driver, "return document.body.dataset.status") == "diverge",
            "the header says the paths diverge")
    c.check(page, "DIVERGE" in js(driver, "return document.getElementById('status').textContent"),
            "the status badge reads DIVERGE")
    # The seed's duplicated 127: column 128 is marked divergent (fake-quant 128, int8 127) ...
    marked = js(driver, "return [...document.querySelectorAll('#staircase .divergent')]"
                        ".map(g => [+g.dataset.w, +g.dataset.fq, +g.dataset.int8])")
    c.check(page, len(marked) == 128, f"the staircase marks 128 divergent columns ({len(marked)})")
    c.check(page, [128, 128, 127] in marked, "column 128 is marked: fake-quant 128, int8 127")
    c.check(page, all(w >= 128 and fq == i8 + 1 for w, fq, i8 in marked),
            "every marked column is at w >= 128 with int8 one bin low")
    visible = js(driver, "const g = document.querySelector('#staircase .divergent[data-w=\"128\"]');"
                         "if (!g) return false; const r = g.getBoundingClientRect();"
                         "return r.width > 0 && r.height > 0;")
    c.check(page, visible, "the marker at w = 128 is drawn with a size")
    # ... and the zoom shows the int8 bin 127 twice, at w = 127 and 128, with the repeat marked.
    twice = js(driver, "return [...document.querySelectorAll('#staircase-zoom .pt.int8')]"
                       ".filter(p => p.dataset.bin === '127').map(p => +p.dataset.w)")
    c.check(page, sorted(twice) == [127, 128], f"the zoom shows int8 bin 127 at w = 127, 128 ({twice})")
    c.check(page, js(driver, "return document.querySelectorAll('#staircase-zoom "
                             ".repeat[data-path=\"int8\"][data-bin=\"127\"]').length") == 1,
            "the zoom marks the repeated int8 bin 127")
    bars = js(driver, "return [...document.querySelectorAll('#dq-histogram .bar')]"
                      ".map(b => [+b.dataset.dq, +b.dataset.count])")
    c.check(page, sorted(bars) == [[0, 98304], [1, 98304]],
            f"the Δq histogram has 98304 at 0 and at +1 over all elements ({bars})")
    first = js(driver, "const r = document.querySelector('#trace tr.first-diff');"
                       "return r ? r.dataset.stage : null")
    c.check(page, first == "weight[c=0] dequantized",
            f"the trace highlights the first difference at the weight ({first})")
    c.check(page, js(driver, "return document.querySelectorAll("
                             "'#qparams tr[data-point=\"weight\"][data-differs=\"true\"]').length") >= 2,
            "the qparams table highlights the weight's differing scale and zero point")
    c.check(page, js(driver, "return document.querySelectorAll('#findings .finding"
                             "[data-class=\"grid_mismatch\"][data-point=\"weight\"]').length") == 1,
            "the diagnosis finds grid_mismatch at the weight")
    c.check(page, "EMULATED" in js(driver, "return document.getElementById('engine').textContent"),
            "the engine section says fbgemm is EMULATED")
    c.check(page, "--observer plain" in js(driver, "return document.getElementById('fixes').textContent"),
            "the verified fixes include --observer plain")
    c.check(page, js(driver, "return document.getElementById('command-line').textContent") == command_line,
            "the exact command line is shown")
    version = subprocess.run([c.qparity, "--version"], stdout=subprocess.PIPE, text=True,
                             check=False).stdout.split()
    shown = js(driver, "return document.getElementById('version').textContent")
    c.check(page, bool(version) and shown == version[-1], f"the qparity version is shown ({shown})")
    c.check(page, js(driver, "return document.getElementById('profile').textContent") == "fbgemm",
            "the profile name is shown")


def check_seed_agree(c, driver, page, command_line):
    element_checks(c, driver, page, ["staircase", "staircase-zoom", "dq-histogram"],
                   ["qparams", "budgets", "dq-table", "engine-table", "scenario"])
    c.check(page, js(driver, "return document.body.dataset.status") == "agree",
            "the header says the paths agree")
    c.check(page, js(driver, "return document.querySelectorAll('#staircase .divergent').length") == 0,
            "no divergent column is marked")
    verdicts = js(driver, "return [...document.querySelectorAll('#budgets tbody tr')]"
                          ".map(r => r.dataset.exceeded)")
    c.check(page, verdicts == ["false", "false"], f"both budgets hold ({verdicts})")
    # Escaping: the file name has <&> in it; it must appear as text, not as markup.
    shown = js(driver, "return document.getElementById('command-line').textContent")
    c.check(page, shown == command_line and "<&>" in shown, "the command line with <&> is shown literally")
    c.check(page, js(driver, "return document.querySelectorAll('#command-line *').length") == 0,
            "the command line injected no element")


def check_explain(c, driver, page, command_line):
    element_checks(c, driver, page, ["staircase", "staircase-zoom"], ["trace", "engine-table", "scenario"])
    c.check(page, js(driver, "return document.body.dataset.status") == "diverge",
            "the header says the element differs")
    first = js(driver, "const r = document.querySelector('#trace tr.first-diff');"
                       "return r ? r.dataset.stage : null")
    c.check(page, first == "weight[c=0] dequantized", f"the first difference is highlighted ({first})")
    c.check(page, js(driver, "return document.querySelectorAll('#trace tr.first-diff').length") == 1,
            "exactly one first difference")
    c.check(page, js(driver, "const h = document.querySelector('#staircase .highlight');"
                             "return h ? +h.dataset.w : null") == 128,
            "the staircase marks the traced column w = 128")
    c.check(page, js(driver, "return document.getElementById('command-line').textContent") == command_line,
            "the exact command line is shown")


def check_model_diagnosis(c, driver, page, layer_rows):
    """The diagnosis section: one row per layer with its own and inherited error drawn as bars whose
    widths follow the counts, layers that create error marked, causes and an impact table."""
    element_checks(c, driver, page, ["diagnosis-dq"], ["diagnosis-layers", "diagnosis-causes", "diagnosis-impact"])
    rows = js(driver, "return [...document.querySelectorAll('#diagnosis-layers tbody tr')].map(r => ({"
                      "layer: r.dataset.layer, own: +r.dataset.local, inherited: +r.dataset.inherited,"
                      "creates: r.classList.contains('creates'),"
                      "ownWidth: r.querySelector('.own-bar').getBoundingClientRect().width,"
                      "inheritedWidth: r.querySelector('.inherited-bar').getBoundingClientRect().width}))")
    c.check(page, [r["layer"] for r in rows] == layer_rows, "one diagnosis row per layer, in the table's order")
    c.check(page, any(r["own"] > 0 for r in rows) and all(r["creates"] == (r["own"] > 0) for r in rows),
            "exactly the layers with own error are marked as creating it")
    c.check(page, all((r["ownWidth"] > 0) == (r["own"] > 0) and (r["inheritedWidth"] > 0) == (r["inherited"] > 0)
                      for r in rows),
            "each layer's own / inherited bar is drawn exactly when its count is not 0")
    causes = js(driver, "return [...document.querySelectorAll('#diagnosis-causes tbody tr')].length")
    c.check(page, causes >= 1, f"the causes are listed ({causes})")


def check_sweep(c, driver, page, command_line):
    element_checks(c, driver, page, ["outcome-strip", "mismatch-plot"],
                   ["ranges", "boundaries", "points", "engine-table", "scenario"])
    c.check(page, js(driver, "return document.body.dataset.status") == "diverge",
            "the header says some points diverge")
    strips = js(driver, "return document.querySelectorAll('#outcome-strip .strip').length")
    c.check(page, strips == 4, f"one strip per series ({strips})")
    cells = js(driver, "return document.querySelectorAll('#outcome-strip .cell').length")
    c.check(page, cells == 160, f"one cell per point ({cells})")
    c.check(page, js(driver, "return document.getElementById('outcome-strip').dataset.logX") == "true",
            "k is on a log axis")
    legend = js(driver, "return [...document.querySelectorAll('#outcome-legend li')]"
                        ".map(l => l.dataset.outcome)")
    c.check(page, "agree" in legend and "grid_mismatch@weight" in legend,
            f"the legend names the outcomes ({legend})")
    colours = js(driver, "const m = {}; document.querySelectorAll('#outcome-strip .cell')"
                         ".forEach(c => { (m[c.dataset.outcome] ||= new Set()).add(c.getAttribute('fill')) });"
                         "return Object.values(m).map(s => [...s][0]);")
    c.check(page, len(set(colours)) == len(colours) and len(colours) == len(legend),
            "each outcome has its own colour")
    c.check(page, js(driver, "return document.querySelectorAll('#outcome-strip .boundary').length") == 2,
            "both boundaries are marked on the strips")
    c.check(page, js(driver, "return document.querySelectorAll('#mismatch-plot .line-series').length") == 4,
            "one line per series in the mismatch plot")
    c.check(page, js(driver, "return document.querySelectorAll('#points tbody tr').length") == 160,
            "the points table lists every point")
    c.check(page, js(driver, "return document.getElementById('command-line').textContent") == command_line,
            "the exact command line is shown")


def check_model(c, driver, page, command_line):
    element_checks(c, driver, page, ["depth-chart"],
                   ["layers", "grids", "mismatches", "outputs", "reference", "engine-table"])
    c.check(page, js(driver, "return document.body.dataset.report") == "model", "the page is a model report")
    c.check(page, js(driver, "return document.body.dataset.status") == "diverge",
            "the header says the paths diverge (convnet_basic on qnnpack does)")
    rows = js(driver, "return [...document.querySelectorAll('#layers tbody tr')].map(r => r.dataset.layer)")
    columns = js(driver, "return [...document.querySelectorAll('#depth-chart g.layer')].map(g => g.dataset.layer)")
    c.check(page, len(rows) >= 4 and rows == columns,
            f"one chart column per table row, in the same order ({len(columns)} columns, {len(rows)} rows)")
    drawn = js(driver, "return [...document.querySelectorAll('#depth-chart g.layer circle')]"
                       ".every(e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; })")
    c.check(page, drawn, "every layer's SQNR marker is drawn with a size")
    differs = js(driver, "return [...document.querySelectorAll('#layers tbody tr')]"
                         ".filter(r => +r.dataset.mismatch > 0).map(r => r.dataset.layer)")
    bars = js(driver, "return [...document.querySelectorAll('#depth-chart g.layer')]"
                      ".filter(g => g.querySelector('rect.share')).map(g => g.dataset.layer)")
    c.check(page, bool(differs) and differs == bars,
            f"a mismatch-share bar exactly for the layers whose bins differ ({bars} / {differs})")
    first_row = js(driver, "const r = document.querySelector('#layers tr.first-diff'); return r ? r.dataset.layer : null")
    first_col = js(driver, "const s = document.getElementById('depth-chart');"
                           "const g = s.querySelector('g.layer[data-index=\"' + s.dataset.firstDivergent + '\"]');"
                           "return g ? g.dataset.layer : null")
    c.check(page, first_row is not None and first_row == first_col and first_row == differs[0],
            f"the first divergent layer is marked in the table and the chart ({first_row}, {first_col})")
    c.check(page, js(driver, "return document.querySelectorAll('#depth-chart .first-divergent').length") == 1,
            "the chart draws the first-divergent line")
    c.check(page, js(driver, "return document.querySelectorAll('#mismatches tbody tr').length") == len(differs),
            "one first-mismatch row per divergent layer")
    c.check(page, "bit-exact" in js(driver, "return document.getElementById('reference-section').textContent"),
            "the reference check says the emulation is bit-exact")
    c.check(page, js(driver, "return document.getElementById('command-line').textContent") == command_line,
            "the exact command line is shown")
    check_model_diagnosis(c, driver, page, rows)


def model_page(qparity, workdir, models):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cli"))
    import model_fixtures
    files = model_fixtures.model_files(model_fixtures.models_root(models, ("convnet_basic",)), "convnet_basic")
    return render(qparity, workdir, "model.html",
                  ["model", files["qat.pt"], files["int8.pt"], "--input", files["input.pt"], "--backend", "qnnpack"],
                  {1})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qparity", required=True, help="path of the qparity binary")
    parser.add_argument("--artifacts", default="html-artifacts",
                        help="directory for the screenshots and pages (default: ./html-artifacts)")
    parser.add_argument("--model-report", action="store_true",
                        help="also check `qparity model --html` (needs qparity-model and generated models)")
    parser.add_argument("--models", default=None,
                        help="make_models.py output directory for the model report (default: the cache)")
    args = parser.parse_args()
    qparity = str(Path(args.qparity).resolve())
    artifacts = Path(args.artifacts).resolve()
    artifacts.mkdir(parents=True, exist_ok=True)

    c = Checker(qparity)
    with tempfile.TemporaryDirectory(prefix="qparity-html-") as tmp:
        tmp = Path(tmp)
        try:
            pages = [
                ("seed", *render(qparity, tmp, "seed.html", ["seed"], {1}), check_seed),
                ("seed-agree", *render(qparity, tmp, "seed agree <&>.html",
                                       ["seed", "--observer", "plain", "--rows", "4",
                                        "--fail-on", "max-dq=0,bin-mismatch=0"], {0}),
                 check_seed_agree),
                ("explain", *render(qparity, tmp, "explain.html", ["explain"], {1}), check_explain),
                ("sweep", *render(qparity, tmp, "sweep.html", SWEEP_ARGS, {1}), check_sweep),
            ]
            if args.model_report or args.models:
                pages.append(("model", *model_page(qparity, tmp, args.models), check_model))
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
            print(f"check_html: FAIL: {e}", file=sys.stderr)
            return 1
        user_data = tmp / "chromium-profile"
        user_data.mkdir()
        driver = make_driver(user_data)
        try:
            for name, path, command_line, check in pages:
                print(f"{name}: {path.name}", flush=True)
                shutil.copyfile(path, artifacts / f"{name}.html")
                try:
                    static_checks(c, name, path.read_text(encoding="utf-8"))
                    browser_checks(c, driver, name, path)
                    check(c, driver, name, command_line)
                    screenshot(driver, artifacts / f"{name}.png")
                    narrow_check(c, driver, name)
                except Exception as e:  # a check that cannot even run is a failure too
                    c.check(name, False, f"{type(e).__name__}: {e}")
        finally:
            driver.quit()

    print(f"\n{c.passed} checks passed, {len(c.failures)} failed; screenshots in {artifacts}")
    if c.failures:
        print("FAILED:\n  " + "\n  ".join(c.failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
