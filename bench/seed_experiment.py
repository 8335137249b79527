#!/usr/bin/python3
"""The seed experiment in real PyTorch 1.13.1, lean, for timing against `qparity`.

It builds the model with the oracle's own building blocks (tests/parity/torch_seed_oracle.py:
SeedModel, make_qconfig, hand_set_qparams, seed_input), runs the QAT model and the convert()ed
int8 model, and prints error mean, error max and the first nonzero error, as the seed's script
does. Unlike the oracle it registers no hooks, makes no assertions and writes no JSON: it is the
Python side of bench/run_seed_benchmark.sh.

Run it with Debian's interpreter (the one that has python3-torch):
    /usr/bin/python3 bench/seed_experiment.py --backend qnnpack [--k 1] [--rows 256]
"""
import argparse
import os
import sys
import warnings

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "parity"))
from torch_seed_oracle import SeedModel, hand_set_qparams, make_qconfig, seed_input  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", choices=("qnnpack", "onednn"), default="qnnpack")
    ap.add_argument("--k", type=float, default=1.0)
    ap.add_argument("--rows", type=int, default=256)
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    tq = torch.quantization
    torch.backends.quantized.engine = a.backend

    model = SeedModel(make_qconfig("fused"))
    model.conv.bias = nn.Parameter(torch.zeros_like(model.conv.bias))
    model.conv.weight = nn.Parameter(a.k * torch.eye(3).reshape(model.conv.weight.shape))
    tq.fuse_modules(model, [["conv", "act"]], inplace=True)
    qat = tq.prepare_qat(model).train()
    qat.eval()
    qat.apply(tq.disable_observer)
    hand_set_qparams(qat, a.k, 0.0, a.k)

    x = seed_input(a.rows)
    expected = qat(x)
    qat.dequant = nn.Identity()
    produced = tq.convert(qat, inplace=False)(x)

    error = torch.abs(expected - produced.dequantize())
    nonzero = error.nonzero()
    print("error_mean =", float(torch.mean(error)))
    print("error_max  =", float(torch.max(error)))
    if len(nonzero):
        index = tuple(nonzero[0].tolist())
        print("first nonzero error at", list(index), "=", float(error[index]),
              "; int8 bin", int(produced.int_repr()[index]))


if __name__ == "__main__":
    main()
