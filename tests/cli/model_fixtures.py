"""The generated test models the `qparity model` CLI and schema tests run on.

models_root(explicit, models) returns a directory laid out as tests/model/make_models.py writes it
(DIR/<model>/<engine>/{qat.pt, int8.pt, input.pt, input.npy, ...}) holding at least `models` on
qnnpack:

  * `explicit` (a --models argument) when given;
  * else check_model_parity.py's cache (keyed by make_models.py's sha256 and this CPU's ISA
    flags), when its models_dir() adds missing models one by one: the models asked for are
    generated into it if absent (~10 s per model and engine);
  * else (an older check_model_parity.py, whose cache is all or nothing) the full set when it is
    already cached, or a small set generated here into a sibling directory "<key>-small" (only the
    models asked for, qnnpack only), never into the full set's directory.
"""
import hashlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "model"))
import check_model_parity  # noqa: E402  (tests/model: GENERATOR, cpu_key, the cache root)

ENGINE = "qnnpack"


def _cache_key():
    with open(check_model_parity.GENERATOR, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:12] + "-" + check_model_parity.cpu_key()


def _cache_root():
    return os.environ.get("QPARITY_MODEL_CACHE",
                          os.path.join(os.path.expanduser("~"), ".cache", "qparity", "models"))


def _has(folder, models):
    return all(os.path.isfile(os.path.join(folder, m, ENGINE, f))
               for m in models for f in ("qat.pt", "int8.pt", "input.pt", "input.npy"))


def models_root(explicit=None, models=("convnet_basic",)):
    if explicit:
        if not _has(explicit, models):
            raise SystemExit("--models %s: needs %s on %s (make_models.py --out DIR --models %s --engines %s)"
                             % (explicit, ", ".join(models), ENGINE, ",".join(models), ENGINE))
        return explicit
    if "jobs" in inspect.signature(check_model_parity.models_dir).parameters:
        # check_model_parity.py grows its cache model by model: share it.
        return check_model_parity.models_dir(list(models), 2)
    root = _cache_root()
    full = os.path.join(root, _cache_key())
    if os.path.exists(os.path.join(full, "manifest.json")) and _has(full, models):
        return full
    small = full + "-small"
    if os.path.exists(os.path.join(small, "manifest.json")) and _has(small, models):
        return small
    have = []
    if os.path.exists(os.path.join(small, "manifest.json")):
        with open(os.path.join(small, "manifest.json")) as f:
            have = json.load(f).get("models", [])
    wanted = sorted(set(have) | set(models))
    os.makedirs(root, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=root, prefix=".small-")
    print("generating test models %s (%s) into %s ..." % (",".join(wanted), ENGINE, small), flush=True)
    subprocess.run([sys.executable, check_model_parity.GENERATOR, "--out", tmp, "--models", ",".join(wanted),
                    "--engines", ENGINE], check=True)
    if os.path.exists(small):  # a smaller set from before: replace it whole
        old = tempfile.mkdtemp(dir=root, prefix=".old-")
        os.replace(small, os.path.join(old, "set"))
        shutil.rmtree(old, ignore_errors=True)
    os.replace(tmp, small)
    return small


def model_files(root, model):
    d = os.path.join(root, model, ENGINE)
    return {name: os.path.join(d, name) for name in ("qat.pt", "qat_observing.pt", "int8.pt", "input.pt", "input.npy")}
