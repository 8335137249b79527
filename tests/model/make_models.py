#!/usr/bin/python3
"""Deterministic generator of the test models for qparity's model-level parity tests.

For every model and engine it builds an eager float model with QuantStub / DeQuantStub
(random init, fixed seed, no downloads), fuses it, prepares it for QAT with
`get_default_qat_qconfig(engine)`, trains it for a few SGD steps on random data (so BN running
stats, observers and fake-quant scales are non-trivial), and writes the three TorchScript files
qparity compares, with the outputs real PyTorch 1.13.1 gives for them.

Always run it with Debian's interpreter (the one with torch 1.13.1 + torchvision 0.14.1):

    /usr/bin/python3 tests/model/make_models.py --out DIR [--models a,b,...] [--engines qnnpack,onednn] [--jobs 2]

Each model is generated in a fresh spawned process (--jobs at a time, one thread each) with
PYTHONHASHSEED=0, so every file is byte-identical from run to run and independent of which other
models were asked for. All six models x two engines take about 1.5 minutes on two idle cores.

Layout written:

    DIR/manifest.json               models, engines, entries, torch/torchvision versions, this script's sha256
    DIR/<model>/<engine>/
        qat.pt                      eager QAT model, observers disabled, eval(); saved with torch.jit.trace
                                    (torch.jit.script fails on fused ConvBn QAT modules in 1.13.1)
        qat_observing.pt            the same trained model, eval() but observers still ENABLED. Tracing runs
                                    one forward on the input, so the saved state has seen it once, and every
                                    forward of the loaded module moves min/max and the scales again.
        int8.pt                     torch.jit.script(convert(qat model with observers disabled))
        input.pt / input.npy        the float32 input (batch 1): torch.save, and numpy.save in C order
        expected.json               {"model", "engine", "input_shape", "output_shape",
                                     "<kind>_output": [floats], "<kind>_output_bits": [uint32 bit patterns]
                                     for kind in qat, qat_observing, int8,
                                     "int8_layers": [qualified names of the int8 model's leaf modules and
                                     QFunctional calls, in execution order, repeats included; recorded on the
                                     eager converted model], "int8_layer_types": [class names, the QFunctional
                                     calls as "QFunctional.<method>", e.g. QFunctional.add_relu]}

Each expected output comes from a fresh torch.jit.load of the saved file (the quantized engine set
before loading int8.pt, since the weights are re-packed at load; torch.set_num_threads(1)), one forward
under torch.no_grad() on the saved input, flattened. qparity's tests load the same files from C++
(libtorch) and from its own emulation and must reproduce the *_output_bits exactly; they also walk
int8_layers to compare layer by layer.
"""
import argparse
import copy
import hashlib
import importlib
import json
import multiprocessing
import os
import sys
import warnings

import numpy as np
import torch
import torch.nn as nn
import torchvision
from torch.ao.nn.quantized import FloatFunctional
from torch.ao.quantization import DeQuantStub, QuantStub, fuse_modules_qat

SEED = 20240601
TRAIN_STEPS = 3
TRAIN_BATCH = 4
LEARNING_RATE = 0.01
ENGINES = ("qnnpack", "onednn")
QFUNCTIONAL_METHODS = ("add", "add_relu", "add_scalar", "mul", "mul_scalar", "cat")


def conv_bn_relu(cin, cout, kernel=3, stride=1, padding=1, groups=1, dilation=1, relu=True):
    """Conv2d (no bias) + BatchNorm2d [+ ReLU] as an nn.Sequential indexed 0, 1, 2 for fusion."""
    layers = [nn.Conv2d(cin, cout, kernel, stride, padding, dilation=dilation, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def fuse_sequential(seq):
    """Fuses a conv_bn_relu() Sequential in place (QAT fusion)."""
    fuse_modules_qat(seq, [[str(i) for i in range(len(seq))]], inplace=True)


class ConvNetBasic(nn.Module):
    """Conv+BN+ReLU, Conv(bias)+ReLU stride 2, MaxPool, 1x1 Conv+BN, standalone ReLU, GAP, Linear."""

    def __init__(self):
        super().__init__()
        self.quant = QuantStub()
        self.block1 = conv_bn_relu(3, 8)
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2, padding=1, bias=True)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.block3 = conv_bn_relu(8, 16, kernel=1, padding=0, relu=False)
        self.relu3 = nn.ReLU()
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)
        self.dequant = DeQuantStub()

    def forward(self, x):
        x = self.block1(self.quant(x))
        x = self.pool(self.relu2(self.conv2(x)))
        x = self.gap(self.relu3(self.block3(x)))
        return self.dequant(self.fc(torch.flatten(x, 1)))

    def fuse_model(self):
        fuse_sequential(self.block1)
        fuse_modules_qat(self, [["conv2", "relu2"]], inplace=True)
        fuse_sequential(self.block3)  # Conv+BN only; relu3 stays a standalone nn.ReLU


class ResidualNet(nn.Module):
    """Stem, a residual block (FloatFunctional add and add_relu), depthwise, grouped and dilated convs,
    LinearReLU, Dropout, Linear."""

    def __init__(self):
        super().__init__()
        self.quant = QuantStub()
        self.stem = conv_bn_relu(3, 16)
        self.res_a = conv_bn_relu(16, 16)
        self.res_b = conv_bn_relu(16, 16, relu=False)
        self.skip_add_relu = FloatFunctional()
        self.depthwise = conv_bn_relu(16, 16, groups=16, stride=2)
        self.grouped = conv_bn_relu(16, 16, kernel=1, padding=0, groups=2, relu=False)
        self.skip_add = FloatFunctional()
        self.dilated = conv_bn_relu(16, 24, padding=2, dilation=2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(24, 32)
        self.fc1_relu = nn.ReLU()
        self.dropout = nn.Dropout(0.2)
        self.fc2 = nn.Linear(32, 10)
        self.dequant = DeQuantStub()

    def forward(self, x):
        x = self.stem(self.quant(x))
        x = self.skip_add_relu.add_relu(self.res_b(self.res_a(x)), x)
        x = self.depthwise(x)
        x = self.skip_add.add(self.grouped(x), x)
        x = self.gap(self.dilated(x))
        x = self.dropout(self.fc1_relu(self.fc1(torch.flatten(x, 1))))
        return self.dequant(self.fc2(x))

    def fuse_model(self):
        for seq in (self.stem, self.res_a, self.res_b, self.depthwise, self.grouped, self.dilated):
            fuse_sequential(seq)
        fuse_modules_qat(self, [["fc1", "fc1_relu"]], inplace=True)


class OpsNet(nn.Module):
    """One of each remaining op: FloatFunctional cat / mul / add_scalar / mul_scalar, ReLU6, Hardswish,
    Hardsigmoid, Sigmoid, AvgPool2d, flatten / reshape / view.

    Everything here converts and scripts in 1.13.1; nothing had to be dropped. Sigmoid and
    Hardsigmoid get a FixedQParamsFakeQuantize (scale 1/256, zero point 0) in QAT and stay float
    modules after convert (aten::sigmoid / aten::hardsigmoid run on the quantized tensor). add_scalar
    and mul_scalar are not observed in QAT (no fake-quant after them) while the int8 ops pick their
    own output qparams.
    """

    def __init__(self):
        super().__init__()
        self.quant = QuantStub()
        self.stem = conv_bn_relu(3, 8, stride=2)  # 32 x 32 -> 16 x 16
        self.branch_relu6 = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU6())
        self.branch_hswish = nn.Sequential(nn.Conv2d(8, 8, 1), nn.Hardswish())
        self.cat = FloatFunctional()
        self.gate_conv = nn.Conv2d(16, 16, 1)
        self.hsigmoid = nn.Hardsigmoid()
        self.sigmoid = nn.Sigmoid()
        self.gate_mul = FloatFunctional()
        self.sigmoid_mul = FloatFunctional()
        self.add_scalar = FloatFunctional()
        self.mul_scalar = FloatFunctional()
        self.pool = nn.AvgPool2d(2)
        self.fc = nn.Linear(16 * 8 * 8, 10)
        self.dequant = DeQuantStub()

    def forward(self, x):
        x = self.stem(self.quant(x))
        x = self.cat.cat([self.branch_relu6(x), self.branch_hswish(x)], dim=1)
        x = self.gate_mul.mul(x, self.hsigmoid(self.gate_conv(x)))
        x = self.sigmoid_mul.mul(x, self.sigmoid(x))
        x = self.mul_scalar.mul_scalar(self.add_scalar.add_scalar(x, 0.5), 1.5)
        x = torch.flatten(self.pool(x), 1)  # 16 x 16 x 16 -> 16 x 8 x 8 -> 1024 (a contiguous copy)
        x = x.reshape(x.shape[0], 16, 64)  # view() would fail on the channels-last quantized pool output
        x = x.view(x.shape[0], -1)
        return self.dequant(self.fc(x))

    def fuse_model(self):
        fuse_sequential(self.stem)


def torchvision_model(name):
    """A quantizable torchvision model, random init, with fuse_model(is_qat=True) as its fuse step."""
    builder = getattr(torchvision.models.quantization, name)
    model = builder(weights=None, quantize=False)
    model.fuse_model = lambda m=model: type(m).fuse_model(m, is_qat=True)
    return model


# name -> (builder of the float eager model with a fuse_model() method, input shape)
MODELS = {
    "resnet18": (lambda: torchvision_model("resnet18"), (1, 3, 64, 64)),
    "mobilenet_v2": (lambda: torchvision_model("mobilenet_v2"), (1, 3, 64, 64)),
    "shufflenet_v2": (lambda: torchvision_model("shufflenet_v2_x0_5"), (1, 3, 64, 64)),
    "convnet_basic": (ConvNetBasic, (1, 3, 32, 32)),
    "residual_net": (ResidualNet, (1, 3, 32, 32)),
    "ops_net": (OpsNet, (1, 3, 32, 32)),
}


def train_qat_model(build, input_shape, engine):
    """Float model -> fused -> prepare_qat -> a few SGD steps in train() mode. Returns the QAT model."""
    torch.backends.quantized.engine = engine
    torch.manual_seed(SEED)
    model = build().train()
    model.fuse_model()
    model.qconfig = torch.ao.quantization.get_default_qat_qconfig(engine)
    torch.ao.quantization.prepare_qat(model, inplace=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.9)
    batch_shape = (TRAIN_BATCH,) + tuple(input_shape[1:])
    for _ in range(TRAIN_STEPS):
        out = model(torch.randn(batch_shape))
        loss = (out - torch.randn(out.shape)).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def make_input(name, input_shape):
    """The test input: standard normal float32, seeded by the model name only (same for every engine)."""
    generator = torch.Generator().manual_seed(SEED + sum(name.encode()))
    return torch.randn(input_shape, generator=generator, dtype=torch.float32)


def trace(model, x):
    """torch.jit.trace of a deep copy (tracing runs forward once, which moves enabled observers).

    The qconfig attributes are deleted from the copy first: they cannot be scripted (TorchScript
    drops them anyway) and trying to compile them for every module doubles the trace time.
    """
    model = copy.deepcopy(model)
    for module in model.modules():
        if hasattr(module, "qconfig"):
            del module.qconfig
    with torch.no_grad():
        return torch.jit.trace(model, x, check_trace=False)


def record_int8_layers(int8_eager, x):
    """Runs the converted eager model once; returns [(name, type)] of leaf modules and QFunctional
    calls in execution order."""
    calls = []

    def pre_hook(name):
        return lambda module, inputs: calls.append((name, type(module).__name__))

    def wrap(name, fn):
        def wrapped(*args, **kwargs):
            calls.append((name, "QFunctional." + fn.__name__))
            return fn(*args, **kwargs)
        return wrapped

    model = copy.deepcopy(int8_eager)
    for name, module in model.named_modules():
        if isinstance(module, torch.ao.nn.quantized.QFunctional):
            for method in QFUNCTIONAL_METHODS:
                setattr(module, method, wrap(name, getattr(module, method)))
        elif is_leaf(module):
            module.register_forward_pre_hook(pre_hook(name))
    with torch.no_grad():
        model(x)
    return calls


def is_leaf(module):
    """No children, or only the LinearPackedParams holder that quantized Linear keeps as a submodule."""
    packed = torch.ao.nn.quantized.modules.linear.LinearPackedParams
    return all(isinstance(child, packed) for child in module.children())


def run_saved(path, x, engine):
    """Fresh torch.jit.load of a saved file, one forward under no_grad, flattened float32 numpy array."""
    torch.backends.quantized.engine = engine
    module = torch.jit.load(path)
    with torch.no_grad():
        y = module(x)
    return y.detach().contiguous().reshape(-1).numpy().astype(np.float32, copy=False), list(y.shape)


def output_fields(kind, values):
    """The floats (repr of the exact float32 value) and their uint32 bit patterns."""
    return {kind + "_output": [float(v) for v in values],
            kind + "_output_bits": values.view(np.uint32).tolist()}


def generate(name, engine, out_dir):
    """Writes DIR/<name>/<engine>/ and returns its expected.json dict."""
    build, input_shape = MODELS[name]
    directory = os.path.join(out_dir, name, engine)
    os.makedirs(directory, exist_ok=True)
    path = lambda file: os.path.join(directory, file)

    model = train_qat_model(build, input_shape, engine)
    observing = copy.deepcopy(model).eval()
    model.apply(torch.ao.quantization.disable_observer).eval()
    int8_eager = torch.ao.quantization.convert(copy.deepcopy(model).eval())

    x = make_input(name, input_shape)
    torch.save(x, path("input.pt"))
    np.save(path("input.npy"), np.ascontiguousarray(x.numpy(), dtype=np.float32))
    torch.jit.save(trace(model, x), path("qat.pt"))
    torch.jit.save(trace(observing, x), path("qat_observing.pt"))
    torch.jit.save(torch.jit.script(int8_eager), path("int8.pt"))

    expected = {"model": name, "engine": engine, "input_shape": list(input_shape)}
    for kind in ("qat", "qat_observing", "int8"):
        values, shape = run_saved(path(kind + ".pt"), x, engine)
        assert expected.setdefault("output_shape", shape) == shape, (kind, shape)
        expected.update(output_fields(kind, values))
    layers = record_int8_layers(int8_eager, x)
    expected["int8_layers"] = [layer for layer, _ in layers]
    expected["int8_layer_types"] = [kind for _, kind in layers]
    write_json(path("expected.json"), expected)
    return expected


def generate_model(task):
    """Pool worker: every engine of one model. Returns the manifest entries."""
    name, engines, out_dir = task
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")  # trace / quantization deprecation chatter
    entries = []
    for engine in engines:
        expected = generate(name, engine, out_dir)
        entries.append({"model": name, "engine": engine, "dir": name + "/" + engine,
                        "output_shape": expected["output_shape"]})
        print("wrote %s/%s/%s" % (out_dir, name, engine), flush=True)
    return entries


def worker():
    """generate_model of this file imported as the module `make_models`, so that the spawned workers
    define the models there and not in `__mp_main__` (the module name is part of the TorchScript
    type names, e.g. `__torch__.make_models.OpsNet`)."""
    if __name__ == "make_models":
        return generate_model
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    return importlib.import_module("make_models").generate_model


def write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def script_sha256():
    with open(os.path.abspath(__file__), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def parse_list(text, allowed, what):
    items = [item for item in text.split(",") if item]
    unknown = [item for item in items if item not in allowed]
    if unknown:
        raise SystemExit("unknown %s: %s (choose from %s)" % (what, ",".join(unknown), ",".join(allowed)))
    return items


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of " + ",".join(MODELS))
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset of " + ",".join(ENGINES))
    parser.add_argument("--jobs", type=int, default=2, help="models generated in parallel (default 2)")
    args = parser.parse_args(argv)
    models = parse_list(args.models, MODELS, "model")
    engines = parse_list(args.engines, ENGINES, "engine")

    # One fresh process per model: the saved files then do not depend on which other models were
    # generated before (e.g. TorchScript compiles the QFunctional methods once per process, for
    # every instance), and two models run at a time on two cores. A fixed hash seed makes the
    # saved files byte-identical across runs (TorchScript writes __constants__ in set order).
    os.environ["PYTHONHASHSEED"] = "0"
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.jobs, maxtasksperchild=1) as pool:
        tasks = [(name, engines, args.out) for name in models]
        entries = [entry for result in pool.map(worker(), tasks, chunksize=1) for entry in result]
    write_json(os.path.join(args.out, "manifest.json"),
               {"generator": "tests/model/make_models.py", "script_sha256": script_sha256(),
                "torch_version": torch.__version__, "torchvision_version": torchvision.__version__,
                "seed": SEED, "models": models, "engines": engines, "entries": entries})
    return 0


if __name__ == "__main__":
    sys.exit(main())
