#!/usr/bin/python3
"""The libtorch side of bench/run_model_benchmark.sh: load a QAT / int8 TorchScript pair and run
each model once, as real PyTorch 1.13.1 does it, so the benchmark can set `qparity model` beside it.

    model_libtorch.py QAT.pt INT8.pt --backend ENGINE (--input x.pt | --input-shape N,C,H,W) [--threads 1]
    model_libtorch.py --import-only [--threads 1]      # interpreter start + import torch, nothing else
    model_libtorch.py ... --timing                     # also each phase's wall time on stderr

What it does, and nothing more: set the thread count (torch.set_num_threads) and the quantized
engine (torch.backends.quantized.engine, before the int8 file is loaded: the weights are re-packed
at load), torch.jit.load both files, and run each once under torch.no_grad() on the input. The input
is the --input tensor (torch.load) or, with --input-shape, the same synthetic input `qparity model
--input-shape` makes: element i = float32(sin(0.37 * i)) computed in double (bit-identical to
qparity's std::sin: checked, and --compare-json checks the outputs).

Prints one line, `RESULT: ...` (output shapes and the largest |QAT - int8| output difference).
--compare-json FILE (not used in timed runs) also checks the outputs against a `qparity model
--json` report of the same models and input: both final outputs equal to the float32 bit, so both
sides did the same work. Exit 0, or 1 when that check fails, 2 on a usage error.
"""
import argparse
import json
import math
import sys
import time

T0 = time.perf_counter()


def parse_shape(text):
    try:
        dims = [int(d) for d in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of integers")
    if not 1 <= len(dims) <= 8 or any(d <= 0 for d in dims):
        raise argparse.ArgumentTypeError(f"'{text}': 1 to 8 positive dimensions")
    return dims


def json_floats(values):
    """qparity writes non-finite floats as the strings "inf", "-inf", "nan"."""
    return [float(v) for v in values]


def same_bits(torch, got, want):
    """got: a float tensor; want: a list of floats (exact float32 values). Equal to the bit, NaNs alike."""
    want_t = torch.tensor(want, dtype=torch.float64).float()
    got = got.detach().reshape(-1).float()
    if got.numel() != want_t.numel():
        return f"{got.numel()} elements, the report has {want_t.numel()}"
    both_nan = torch.isnan(got) & torch.isnan(want_t)
    differ = (got.view(torch.int32) != want_t.view(torch.int32)) & ~both_nan
    n = int(differ.sum())
    return f"{n} of {got.numel()} elements differ" if n else None


def main():
    ap = argparse.ArgumentParser(description="Load a QAT / int8 TorchScript pair with libtorch and run each once.")
    ap.add_argument("qat", nargs="?", help="QAT model (torch.jit.trace after prepare_qat)")
    ap.add_argument("int8", nargs="?", help="int8 model (torch.jit.script after convert)")
    ap.add_argument("--backend", choices=["qnnpack", "onednn", "fbgemm"], help="torch.backends.quantized.engine")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--input", help="float32 input tensor saved with torch.save")
    src.add_argument("--input-shape", type=parse_shape, help="synthetic input, element i = sin(0.37 i), e.g. 1,3,224,224")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--import-only", action="store_true", help="import torch, set the threads, exit")
    ap.add_argument("--compare-json", metavar="FILE", help="check the outputs against a `qparity model --json` report")
    ap.add_argument("--timing", action="store_true", help="print each phase's wall time on stderr")
    args = ap.parse_args()
    if not args.import_only:
        if not (args.qat and args.int8 and args.backend):
            ap.error("QAT.pt, INT8.pt and --backend are required (or --import-only)")
        if args.input is None and args.input_shape is None:
            ap.error("one of --input or --input-shape is required")
    if args.threads < 1:
        ap.error("--threads must be at least 1")

    phases = []
    def phase(name, start=[T0]):
        now = time.perf_counter()
        phases.append((name, now - start[0]))
        start[0] = now

    import torch
    torch.set_num_threads(args.threads)
    phase("import torch")
    if args.import_only:
        print(f"RESULT: import torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
        return 0

    torch.backends.quantized.engine = args.backend
    if args.input is not None:
        x = torch.load(args.input)
    else:
        n = math.prod(args.input_shape)
        x = (torch.arange(n, dtype=torch.float64) * 0.37).sin().float().reshape(args.input_shape)
    phase("input")
    qat = torch.jit.load(args.qat)
    phase("load QAT")
    int8 = torch.jit.load(args.int8)
    phase("load int8")
    with torch.no_grad():
        y_qat = qat(x)
        phase("run QAT")
        y_int8 = int8(x)
        phase("run int8")
    if args.timing:
        print("timing: " + ", ".join(f"{n} {t:.3f} s" for n, t in phases), file=sys.stderr)
    y_int8_f = y_int8.dequantize() if y_int8.is_quantized else y_int8
    diff = (y_qat.float() - y_int8_f.float()).abs().max().item()
    print(f"RESULT: input {list(x.shape)}, QAT output {list(y_qat.shape)}, int8 output {list(y_int8.shape)}"
          f"{' (quantized)' if y_int8.is_quantized else ''}, max |QAT - int8| {diff:.6g}")

    if args.compare_json:
        outputs = json.load(open(args.compare_json))["outputs"]
        bad = []
        for name, got, key in (("QAT", y_qat, "fake_quant"), ("int8", y_int8_f, "int8")):
            err = same_bits(torch, got, json_floats(outputs[key]))
            if err:
                bad.append(f"{name} output vs {args.compare_json} outputs.{key}: {err}")
        for line in bad:
            print(f"model_libtorch.py: {line}", file=sys.stderr)
        if bad:
            return 1
        print(f"outputs match {args.compare_json} (QAT and int8, to the float32 bit)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
