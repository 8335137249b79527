#!/usr/bin/python3
"""Deterministic generator of the test models for qparity's model-level parity tests.

For every model and engine it builds a float model (random init, fixed seed, no downloads),
prepares it for QAT, trains it for a few SGD steps on random data (so BN running stats, observers
and fake-quant scales are non-trivial), and writes the three TorchScript files qparity compares,
with the outputs real PyTorch 1.13.1 gives for them. Two modes (MODELS[name][2]):

  eager  the model has QuantStub / DeQuantStub and fuse_model(is_qat): fuse, qconfig =
         get_default_qat_qconfig(engine), prepare_qat; int8 = convert().
  fx     a plain float model: prepare_qat_fx(model, get_default_qat_qconfig_mapping(engine),
         example_inputs) (FX fuses by itself); int8 = convert_fx() (a GraphModule).

Models: resnet18, mobilenet_v2, mobilenet_v3 (large), shufflenet_v2 (x0.5) are torchvision's
quantizable ones (eager); convnet_basic, residual_net, ops_net, pool_act_net are small custom eager
nets (each class docstring lists the ops it covers); fx_convnet (custom, plain torch ops) and
fx_resnet18 (torchvision.models.resnet18, the float one) are FX.

Always run it with Debian's interpreter (the one with torch 1.13.1 + torchvision 0.14.1):

    /usr/bin/python3 tests/model/make_models.py --out DIR [--models a,b,...] [--engines qnnpack,onednn] [--jobs 2]

Each model x engine is generated in a fresh spawned process (--jobs at a time, one thread each)
with PYTHONHASHSEED=0, so every file is byte-identical from run to run and independent of which
other models or engines were asked for. All ten models x two engines took 11 minutes with --jobs 2
on two shared, busy cores (per engine: mobilenet_v3 ~2.7 min, shufflenet_v2 ~2, mobilenet_v2 ~1.7,
resnet18 and fx_resnet18 ~45 s, the small nets 5-20 s; tracing the QAT model, which compiles the
methods of every fake-quant module, and loading the saved files back take most of it).

Layout written:

    DIR/manifest.json               models, engines, entries (model, engine, mode, dir, output_shape),
                                    torch/torchvision versions, this script's sha256
    DIR/<model>/<engine>/
        qat.pt                      QAT model, observers disabled, eval(); saved with torch.jit.trace
                                    (torch.jit.script fails on fused ConvBn QAT modules in 1.13.1); for
                                    fx the traced prepared GraphModule
        qat_observing.pt            the same trained model, eval() but observers still ENABLED. Tracing runs
                                    one forward on the input, so the saved state has seen it once, and every
                                    forward of the loaded module moves min/max and the scales again.
        int8.pt                     torch.jit.script(convert(qat model with observers disabled)), for fx
                                    torch.jit.script(convert_fx(...))
        input.pt / input.npy        the float32 input (batch 1): torch.save, and numpy.save in C order
        expected.json               {"model", "engine", "mode" ("eager" | "fx"), "input_shape", "output_shape",
                                     "<kind>_output": [floats], "<kind>_output_bits": [uint32 bit patterns]
                                     for kind in qat, qat_observing, int8,
                                     "int8_layers", "int8_layer_types": see below}

int8_layers, eager: qualified names of the int8 model's leaf modules and QFunctional calls, in
execution order, repeats included (recorded on the eager converted model); int8_layer_types: class
names, the QFunctional calls as "QFunctional.<method>", e.g. QFunctional.add_relu. For both modes,
int8_layer_shapes: the output shape of each (null for a node whose output is not a tensor).

int8_layers, fx: the converted GraphModule's computing nodes in graph (= execution) order: a
call_module's target ("layer1.0.conv1"), a call_function's or call_method's node name
("quantize_per_tensor", "add_relu_3", "mul_3", "dequantize_27"); int8_layer_types: the module class,
the function ("quantized.add_relu", "cat") or "Tensor.<method>"; int8_layer_node_ops: the FX op
of each (call_module, call_function, call_method). Also, fx only: "qat_layers" / "qat_layer_types"
(the same for the prepared QAT GraphModule, activation_post_process_N included) and
"fx_fake_quant_calls": the QAT model's output fake-quant calls in execution order, each as
{"fx_node", "module" (its name in the traced TorchScript: shared observers keep their first name),
"observes", "int8_layer" (the int8 node it stands for)}, or null if they do not pair one to one.

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
import time
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torch.ao.nn.quantized import FloatFunctional
from torch.ao.quantization import DeQuantStub, QuantStub, fuse_modules, fuse_modules_qat
from torch.ao.quantization import get_default_qat_qconfig_mapping
from torch.ao.quantization.quantize_fx import convert_fx, prepare_qat_fx

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


def fuse(module, groups, is_qat):
    """Fuses the named module groups in place, as torchvision's fuse_model(is_qat) does."""
    (fuse_modules_qat if is_qat else fuse_modules)(module, groups, inplace=True)


def fuse_sequential(seq, is_qat):
    """Fuses a whole conv_bn_relu() Sequential in place."""
    fuse(seq, [[str(i) for i in range(len(seq))]], is_qat)


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

    def fuse_model(self, is_qat):
        fuse_sequential(self.block1, is_qat)
        fuse(self, [["conv2", "relu2"]], is_qat)
        fuse_sequential(self.block3, is_qat)  # Conv+BN only; relu3 stays a standalone nn.ReLU


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

    def fuse_model(self, is_qat):
        for seq in (self.stem, self.res_a, self.res_b, self.depthwise, self.grouped, self.dilated):
            fuse_sequential(seq, is_qat)
        fuse(self, [["fc1", "fc1_relu"]], is_qat)


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

    def fuse_model(self, is_qat):
        fuse_sequential(self.stem, is_qat)


class PoolActNet(nn.Module):
    """What the other custom eager nets leave out, 1 x 3 x 24 x 24 in:

    - stem: Conv+BN+ReLU (ConvBnReLU2d).
    - conv_bn + relu6: Conv+BN fused (ConvBn2d), then an nn.ReLU6 module NOT fused with it
      (own fake-quant in QAT, quantized ReLU6 module in int8).
    - maxpool: nn.MaxPool2d(3, stride 2, padding 1, dilation 2, ceil_mode=True): 24 -> 12.
    - branch: 1x1 Conv+BN (ConvBn2d), then functional F.relu in forward (no fake-quant of its own:
      it runs on the conv's fake-quantized output in QAT and on the quantized tensor in int8).
    - identity: nn.Identity on the skip path (stays nn.Identity after convert).
    - skip_add_relu: FloatFunctional.add_relu (QFunctional.add_relu).
    - avgpool: nn.AvgPool2d(3, stride 2, padding 1, count_include_pad=False): 12 -> 6.
    - conv3 (bias, not fused), then functional F.hardtanh(x, -1, 2) (quantized hardtanh in int8).
    - F.avg_pool2d(kernel 2, stride 1, divisor_override=3): 6 -> 5.
    - gap: nn.AdaptiveAvgPool2d(3) on a 5 x 5 map (non-divisible: overlapping windows), then
      functional F.relu6.
    - fc_tokens: nn.Linear on a 3-D input (1, 16, 9) -> (1, 16, 12), after a reshape.
    - torch.flatten, fc1 + ReLU fused (LinearReLU), nn.Dropout module, functional F.dropout
      (training=self.training: identity in eval), fc2 (Linear), DeQuantStub.

    No pooling window is 1 x 1 (qnnpack refuses those). Converts, scripts and runs on qnnpack and
    onednn in 1.13.1.
    """

    def __init__(self):
        super().__init__()
        self.quant = QuantStub()
        self.stem = conv_bn_relu(3, 8)
        self.conv_bn = conv_bn_relu(8, 8, relu=False)
        self.relu6 = nn.ReLU6()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1, dilation=2, ceil_mode=True)
        self.branch = conv_bn_relu(8, 8, kernel=1, padding=0, relu=False)
        self.identity = nn.Identity()
        self.skip_add_relu = FloatFunctional()
        self.avgpool = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.conv3 = nn.Conv2d(8, 16, 3, padding=1)
        self.gap = nn.AdaptiveAvgPool2d(3)
        self.fc_tokens = nn.Linear(9, 12)
        self.fc1 = nn.Linear(16 * 12, 32)
        self.fc1_relu = nn.ReLU()
        self.dropout = nn.Dropout(0.25)
        self.fc2 = nn.Linear(32, 10)
        self.dequant = DeQuantStub()

    def forward(self, x):
        x = self.stem(self.quant(x))
        x = self.maxpool(self.relu6(self.conv_bn(x)))  # 24 x 24 -> 12 x 12 (ceil mode)
        x = self.skip_add_relu.add_relu(F.relu(self.branch(x)), self.identity(x))
        x = self.avgpool(x)  # 12 x 12 -> 6 x 6
        x = F.hardtanh(self.conv3(x), -1.0, 2.0)
        x = F.avg_pool2d(x, 2, stride=1, divisor_override=3)  # 6 x 6 -> 5 x 5
        x = F.relu6(self.gap(x))  # 5 x 5 -> 3 x 3
        x = self.fc_tokens(x.reshape(x.shape[0], 16, 9))  # (1, 16, 9) -> (1, 16, 12)
        x = self.dropout(self.fc1_relu(self.fc1(torch.flatten(x, 1))))
        x = F.dropout(x, 0.1, self.training)
        return self.dequant(self.fc2(x))

    def fuse_model(self, is_qat):
        for seq in (self.stem, self.conv_bn, self.branch):
            fuse_sequential(seq, is_qat)
        fuse(self, [["fc1", "fc1_relu"]], is_qat)


class FxConvNet(nn.Module):
    """A float model for FX graph mode (prepare_qat_fx): no stubs, no fuse_model, plain torch ops
    in forward; FX fuses, observes and converts them. 1 x 3 x 32 x 32 in. What FX makes of each:

    - conv1 + bn1 + F.relu -> ConvBnReLU2d (int8 ConvReLU2d); the input gets quantize_per_tensor.
    - conv2 + bn2 -> ConvBn2d, then `F.relu(x + y)` -> quantized.add_relu.
    - `torch.sigmoid(conv3(x)) * x`: Conv2d (bias, 1x1), sigmoid with fixed qparams (1/256, 0),
      operator mul -> quantized.mul.
    - torch.cat -> cat on quantized tensors; F.max_pool2d; standalone F.relu (shares qparams).
    - depthwise conv (groups 16, stride 2) -> F.hardswish -> quantized.hardswish.
    - `x + 1.0`, `x * 0.5` -> quantized::add / quantized::mul with a Scalar second argument (the
      add_scalar / mul_scalar kernels; eager QFunctional calls quantized::add_scalar / mul_scalar).
    - conv4 (dilation 2, groups 4) + nn.ReLU6 module (not fused), F.hardtanh(-1, 1).
    - `torch.mul(x, F.hardsigmoid(gate(x)))`: hardsigmoid with fixed qparams, torch.mul.
    - F.avg_pool2d, F.adaptive_avg_pool2d, torch.flatten, Tensor.reshape, Tensor.view.
    - fc1 + F.relu -> LinearReLU; nn.Dropout; fc2 (Linear); the output gets dequantize.

    In the QAT model the ops that keep their input's qparams (cat with its inputs, max_pool2d,
    relu, the scalar add / mul, relu6, hardtanh, the pools, flatten / reshape / view) observe their
    output with the SAME fake-quant module as their input: the traced model calls it again through
    forward1, forward2, ... (activation_post_process_3 runs 5 times per forward).
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.conv3 = nn.Conv2d(8, 8, 1)
        self.depthwise = nn.Conv2d(16, 16, 3, stride=2, padding=1, groups=16)
        self.conv4 = nn.Conv2d(16, 16, 3, padding=2, dilation=2, groups=4)
        self.relu6 = nn.ReLU6()
        self.gate = nn.Conv2d(16, 16, 1)
        self.fc1 = nn.Linear(64, 32)
        self.dropout = nn.Dropout(0.2)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(x + self.bn2(self.conv2(x)))
        x = torch.cat([x, torch.sigmoid(self.conv3(x)) * x], 1)  # 8 + 8 channels
        x = F.relu(F.max_pool2d(x, 2))  # 32 x 32 -> 16 x 16
        x = F.hardswish(self.depthwise(x))  # -> 8 x 8
        x = (x + 1.0) * 0.5
        x = F.hardtanh(self.relu6(self.conv4(x)), -1.0, 1.0)
        x = torch.mul(x, F.hardsigmoid(self.gate(x)))
        x = F.adaptive_avg_pool2d(F.avg_pool2d(x, 2), 2)  # 8 x 8 -> 4 x 4 -> 2 x 2
        x = torch.flatten(x, 1).reshape(-1, 4, 16).view(-1, 64)
        return self.fc2(self.dropout(F.relu(self.fc1(x))))


def torchvision_model(name):
    """A quantizable torchvision model (QuantStub / DeQuantStub, fuse_model(is_qat)), random init."""
    return getattr(torchvision.models.quantization, name)(weights=None, quantize=False)


# name -> (builder of the float model, input shape, mode). Eager ("eager") models have a
# fuse_model(is_qat) method and QuantStub / DeQuantStub; FX ("fx") models are plain float models.
MODELS = {
    "resnet18": (lambda: torchvision_model("resnet18"), (1, 3, 64, 64), "eager"),
    "mobilenet_v2": (lambda: torchvision_model("mobilenet_v2"), (1, 3, 64, 64), "eager"),
    "mobilenet_v3": (lambda: torchvision_model("mobilenet_v3_large"), (1, 3, 64, 64), "eager"),
    "shufflenet_v2": (lambda: torchvision_model("shufflenet_v2_x0_5"), (1, 3, 64, 64), "eager"),
    "convnet_basic": (ConvNetBasic, (1, 3, 32, 32), "eager"),
    "residual_net": (ResidualNet, (1, 3, 32, 32), "eager"),
    "ops_net": (OpsNet, (1, 3, 32, 32), "eager"),
    "pool_act_net": (PoolActNet, (1, 3, 24, 24), "eager"),
    "fx_convnet": (FxConvNet, (1, 3, 32, 32), "fx"),
    "fx_resnet18": (lambda: torchvision.models.resnet18(weights=None), (1, 3, 64, 64), "fx"),
}


def train_qat_model(build, input_shape, engine, mode):
    """Float model -> QAT model -> a few SGD steps in train() mode. Returns the QAT model.

    eager: fuse_model(is_qat=True), qconfig = get_default_qat_qconfig(engine), prepare_qat.
    fx: prepare_qat_fx with get_default_qat_qconfig_mapping(engine) (it fuses by itself); the
    example input is drawn from the seeded generator before training, as the eager path draws none.
    """
    torch.backends.quantized.engine = engine
    torch.manual_seed(SEED)
    model = build().train()
    if mode == "fx":
        example = (torch.randn(input_shape),)
        model = prepare_qat_fx(model, get_default_qat_qconfig_mapping(engine), example_inputs=example)
    else:
        model.fuse_model(is_qat=True)
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
    """Runs the converted eager model once; returns [(name, type, output shape)] of leaf modules and
    QFunctional calls in execution order (the order in which they are called)."""
    calls = []

    def pre_hook(name, pending):
        def hook(module, inputs):
            pending.append(len(calls))
            calls.append([name, type(module).__name__, None])
        return hook

    def post_hook(pending):
        def hook(module, inputs, output):
            calls[pending.pop()][2] = list(output.shape)
        return hook

    def wrap(name, fn):
        def wrapped(*args, **kwargs):
            index = len(calls)
            calls.append([name, "QFunctional." + fn.__name__, None])
            result = fn(*args, **kwargs)
            calls[index][2] = list(result.shape)
            return result
        return wrapped

    model = copy.deepcopy(int8_eager)
    for name, module in model.named_modules():
        if isinstance(module, torch.ao.nn.quantized.QFunctional):
            for method in QFUNCTIONAL_METHODS:
                setattr(module, method, wrap(name, getattr(module, method)))
        elif is_leaf(module):
            pending = []
            module.register_forward_pre_hook(pre_hook(name, pending))
            module.register_forward_hook(post_hook(pending))
    with torch.no_grad():
        model(x)
    return [tuple(call) for call in calls]


def fx_output_shapes(graph_module, x):
    """{node name: output shape} of every tensor-valued node of an FX GraphModule run on x."""
    shapes = {}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, node):
            result = super().run_node(node)
            if isinstance(result, torch.Tensor):
                shapes[node.name] = list(result.shape)
            return result

    with torch.no_grad():
        Recorder(copy.deepcopy(graph_module)).run(x)
    return shapes


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


def fx_target_name(node, graph_module):
    """What an FX node runs: the class name of a call_module's module, the function's name for a
    call_function (str(op) for torch.ops packets, e.g. "quantized.add_relu"), "Tensor.<method>"."""
    if node.op == "call_module":
        return type(graph_module.get_submodule(node.target)).__name__
    if node.op == "call_method":
        return "Tensor." + node.target
    if isinstance(node.target, torch._ops.OpOverloadPacket):
        return str(node.target)
    return getattr(node.target, "__name__", str(node.target))


def fx_layers(graph_module):
    """[(name, kind, op)] of an FX GraphModule's computing nodes in graph (= execution) order:
    call_module -> its target (the module's qualified name), call_function / call_method -> the
    node's name (e.g. "add_relu", "quantize_per_tensor", "dequantize_15"); placeholder, get_attr and
    output nodes are left out."""
    return [(node.target if node.op == "call_module" else node.name, fx_target_name(node, graph_module), node.op)
            for node in graph_module.graph.nodes if node.op in ("call_module", "call_function", "call_method")]


def fx_fake_quant_calls(qat_model, int8_layers, int8_node_ops):
    """The QAT GraphModule's output fake-quant calls in execution order, each with the int8 layer
    it stands for: [{"fx_node", "module", "observes", "int8_layer"}], or None when they do not pair.

    FX observes every quantized node's output exactly once (activation_post_process_N, a top-level
    module), so the k-th call pairs with the k-th int8 node (the final dequantize has none). Ops
    sharing qparams with their input (cat, max_pool2d, relu, flatten, reshape, ...) share the input's
    fake-quant module: "module" is the name that module has in the traced TorchScript (its first
    name), "fx_node" the call's own name in the QAT GraphModule, "observes" the QAT node observed.
    """
    first_name = {}
    for module_name, module in qat_model.named_modules(remove_duplicate=False):
        first_name.setdefault(id(module), module_name)
    calls = [node for node in qat_model.graph.nodes
             if node.op == "call_module" and node.target.startswith("activation_post_process_")]
    quantized = [layer for layer, op in zip(int8_layers, int8_node_ops)
                 if not (op == "call_method" and layer.startswith("dequantize"))]
    if len(calls) != len(quantized):
        return None
    return [{"fx_node": node.target, "module": first_name[id(qat_model.get_submodule(node.target))],
             "observes": node.args[0].target if node.args[0].op == "call_module" else node.args[0].name,
             "int8_layer": layer} for node, layer in zip(calls, quantized)]


def generate(name, engine, out_dir):
    """Writes DIR/<name>/<engine>/ and returns its expected.json dict."""
    build, input_shape, mode = MODELS[name]
    directory = os.path.join(out_dir, name, engine)
    os.makedirs(directory, exist_ok=True)
    path = lambda file: os.path.join(directory, file)

    model = train_qat_model(build, input_shape, engine, mode)
    observing = copy.deepcopy(model).eval()
    model.apply(torch.ao.quantization.disable_observer).eval()
    if mode == "fx":
        int8_model = convert_fx(copy.deepcopy(model).eval())
    else:
        int8_model = torch.ao.quantization.convert(copy.deepcopy(model).eval())

    x = make_input(name, input_shape)
    torch.save(x, path("input.pt"))
    np.save(path("input.npy"), np.ascontiguousarray(x.numpy(), dtype=np.float32))
    torch.jit.save(trace(model, x), path("qat.pt"))
    torch.jit.save(trace(observing, x), path("qat_observing.pt"))
    torch.jit.save(torch.jit.script(int8_model), path("int8.pt"))

    expected = {"model": name, "engine": engine, "mode": mode, "input_shape": list(input_shape)}
    for kind in ("qat", "qat_observing", "int8"):
        values, shape = run_saved(path(kind + ".pt"), x, engine)
        assert expected.setdefault("output_shape", shape) == shape, (kind, shape)
        expected.update(output_fields(kind, values))
    if mode == "fx":
        layers = fx_layers(int8_model)
        shapes = fx_output_shapes(int8_model, x)
        node_names = [node.name for node in int8_model.graph.nodes if node.op in ("call_module", "call_function", "call_method")]
        expected["int8_layers"] = [layer for layer, _, _ in layers]
        expected["int8_layer_types"] = [kind for _, kind, _ in layers]
        expected["int8_layer_node_ops"] = [op for _, _, op in layers]
        expected["int8_layer_shapes"] = [shapes.get(node) for node in node_names]
        qat_layers = fx_layers(model)
        expected["qat_layers"] = [layer for layer, _, _ in qat_layers]
        expected["qat_layer_types"] = [kind for _, kind, _ in qat_layers]
        expected["fx_fake_quant_calls"] = fx_fake_quant_calls(model, expected["int8_layers"],
                                                              expected["int8_layer_node_ops"])
    else:
        layers = record_int8_layers(int8_model, x)
        expected["int8_layers"] = [layer for layer, _, _ in layers]
        expected["int8_layer_types"] = [kind for _, kind, _ in layers]
        expected["int8_layer_shapes"] = [shape for _, _, shape in layers]
    write_json(path("expected.json"), expected)
    return expected


def generate_entry(task):
    """Pool worker: one model on one engine. Returns its manifest entry."""
    name, engine, out_dir = task
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")  # trace / quantization deprecation chatter
    start = time.monotonic()
    expected = generate(name, engine, out_dir)
    print("wrote %s/%s/%s (%.1f s)" % (out_dir, name, engine, time.monotonic() - start), flush=True)
    return {"model": name, "engine": engine, "mode": expected["mode"], "dir": name + "/" + engine,
            "output_shape": expected["output_shape"]}


def worker():
    """generate_entry of this file imported as the module `make_models`, so that the spawned workers
    define the models there and not in `__mp_main__` (the module name is part of the TorchScript
    type names, e.g. `__torch__.make_models.OpsNet`)."""
    if __name__ == "make_models":
        return generate_entry
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    return importlib.import_module("make_models").generate_entry


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

    # One fresh process per model and engine: the saved files then do not depend on what else the
    # run generated (TorchScript numbers its types per process, ___torch_mangle_N, and compiles the
    # QFunctional methods once per process for every instance), and two run at a time on two cores.
    # A fixed hash seed makes them byte-identical across runs (__constants__ are written in set order).
    os.environ["PYTHONHASHSEED"] = "0"
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.jobs, maxtasksperchild=1) as pool:
        tasks = [(name, engine, args.out) for name in models for engine in engines]
        entries = pool.map(worker(), tasks, chunksize=1)
    write_json(os.path.join(args.out, "manifest.json"),
               {"generator": "tests/model/make_models.py", "script_sha256": script_sha256(),
                "torch_version": torch.__version__, "torchvision_version": torchvision.__version__,
                "seed": SEED, "models": models, "engines": engines, "entries": entries})
    return 0


if __name__ == "__main__":
    sys.exit(main())
