#!/usr/bin/python3
"""The seed experiment, lean, for timing: exactly the flow of the seed's example/run.py
(mylesDoyle/DebugTorchQuantization, see /work/shared/docs/seed-experiment.md) and nothing more.

Build FooConv1x1 (QuantStub -> Conv2d(3,3,1x1) -> ReLU -> DeQuantStub) with weights k*I and bias 0,
fuse conv+relu, prepare_qat, disable observers, hand-set the "theoretical" qparams, run the QAT
model, convert() to int8, run it, and print error mean, error max and the first nonzero error
(index, fp32 error, expected quint8, output quint8) as the seed does.

Unlike tests/parity/torch_seed_oracle.py it registers no hooks, makes no assertions, does no numpy
post-processing and writes no JSON: it is the Python side of bench/run_seed_benchmark.sh.
The only additions to the seed are command-line options for the engine (Debian's PyTorch 1.13.1
has qnnpack and onednn, not the seed's fbgemm), k and the row count.

Run it with Debian's interpreter (the one that has python3-torch):
    /usr/bin/python3 bench/seed_experiment.py --backend qnnpack
    /usr/bin/python3 bench/seed_experiment.py --backend onednn --k 1 --rows 256
"""
import argparse

import torch
import torch.nn as nn


def default_qconfig():
    tq = torch.quantization
    return tq.QConfig(
        activation=tq.FusedMovingAvgObsFakeQuantize.with_args(
            observer=tq.MovingAverageMinMaxObserver, quant_min=0, quant_max=255,
            reduce_range=False),
        weight=tq.FusedMovingAvgObsFakeQuantize.with_args(
            observer=tq.MovingAverageMinMaxObserver, quant_min=-128, quant_max=127,
            dtype=torch.qint8, qscheme=torch.per_tensor_symmetric))


class FooConv1x1(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1, 1)
        self.act = nn.ReLU()
        self.quant = torch.quantization.QuantStub(default_qconfig())
        self.dequant = torch.quantization.DeQuantStub()
        self.qconfig = default_qconfig()

    def forward(self, x):
        return self.dequant(self.act(self.conv(self.quant(x))))


def set_qconfig_params(m, k):
    m.conv.weight_fake_quant.scale = torch.Tensor([2.0 * k / 255.0])
    m.conv.weight_fake_quant.activation_post_process.min_val = torch.tensor(0.0)
    m.conv.weight_fake_quant.activation_post_process.max_val = torch.tensor(k)
    m.conv.activation_post_process.scale = torch.Tensor([k / 255.0])
    m.conv.activation_post_process.min_val = torch.tensor(0.0)
    m.conv.activation_post_process.max_val = torch.tensor(k)
    m.conv.activation_post_process.activation_post_process.min_val = torch.tensor(0.0)
    m.conv.activation_post_process.activation_post_process.max_val = torch.tensor(k)
    m.quant.activation_post_process.scale = torch.Tensor([1.0 / 255.0])
    m.quant.activation_post_process.activation_post_process.min_val = torch.tensor(0.0)
    m.quant.activation_post_process.activation_post_process.max_val = torch.tensor(1.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", choices=("qnnpack", "onednn"), default="qnnpack")
    ap.add_argument("--k", type=float, default=1.0)
    ap.add_argument("--rows", type=int, default=256)
    a = ap.parse_args()

    torch.backends.quantized.engine = a.backend
    torch.manual_seed(0)
    k = a.k
    x = torch.arange(0, 256).repeat(1, 3, a.rows, 1) / 255.0

    model = FooConv1x1()
    model.conv.bias = nn.Parameter(torch.zeros_like(model.conv.bias))
    model.conv.weight = nn.Parameter(k * torch.eye(3).reshape(model.conv.weight.shape))
    torch.ao.quantization.fuse_modules(model, [["conv", "act"]], inplace=True)

    m = torch.quantization.prepare_qat(model).train()
    m.eval()
    m.apply(torch.quantization.disable_observer).eval()
    set_qconfig_params(m, k)

    expected_fp32 = m(x)
    expected_quint8 = (expected_fp32 * (k * 255)).to(torch.uint8)

    m.dequant = nn.Identity()
    mq = torch.quantization.convert(m, inplace=False)
    out_q = mq(x)

    error = torch.abs(expected_fp32 - out_q.dequantize())
    error_mean = torch.mean(error)
    error_max = torch.max(error)
    first = error.nonzero()[0].tolist()

    print(f"{error_mean=}")
    print(f"{error_max=}")
    print(f"First nonzero: index: ({first}")
    print(f"\tvalue fp32: {error[*first]}")
    print(f"\tvalue expected quint8: {expected_quint8[*first]}")
    print(f"\tvalue outputed quint8: {out_q.int_repr()[*first]}")


if __name__ == "__main__":
    main()
