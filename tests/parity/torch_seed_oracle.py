#!/usr/bin/python3
"""Real-PyTorch oracle for qparity's seed experiment.

Runs the seed experiment (FooConv1x1: QuantStub -> Conv2d(3,3,1x1) -> ReLU -> DeQuantStub, weight
k*I, bias 0, eager-mode QAT with hand-set qparams, then convert() to int8) with the PyTorch that is
installed (Debian's python3-torch 1.13.1; always run it with /usr/bin/python3), and reports the
numbers each path actually used plus the comparison, in the same JSON layout as
`qparity seed --json`:

    {"scenario": {"k", "backend", "observer", "rows"},
     "paths": {"fake_quant": PATH, "int8": PATH},
     "compare": {"error_mean", "error_max", "fp32_mismatch_count", "bin_mismatch_count",
                 "first_mismatch", "rows_identical"}}
    PATH = {"bins_row", "weight_scale", "weight_zero_point", "input_scale", "input_zero_point",
            "output_scale", "output_zero_point"}

The experiment is described in /work/shared/docs/seed-experiment.md; the module semantics that make
the two paths use different qparams are in /work/shared/docs/numerics.md sections 2 and 3.

Usage:
    /usr/bin/python3 torch_seed_oracle.py --k 1.0 --backend qnnpack --observer fused --rows 256
    /usr/bin/python3 torch_seed_oracle.py --k 0.01 --backend onednn --observer plain --json out.json
"""
import argparse
import json
import sys
import warnings

import numpy as np
import torch
import torch.nn as nn

ENGINES = ("qnnpack", "onednn")
OBSERVERS = ("fused", "plain")
WIDTH = 256  # the seed's input row is arange(0, 256) / 255


def f32(x: float) -> float:
    """x rounded to float32, as a Python float (json repr round-trips it exactly)."""
    return float(np.float32(x))


# Quantization knobs beyond the seed (qparity seed's --weight-qscheme, --weight-quant-min,
# --reduce-range, --weight-pattern, --weight-observer-max); the defaults are the seed's qconfig.
DEFAULT_KNOBS = {"weight_qscheme": "per_tensor_symmetric", "weight_quant_min": -128,
                 "reduce_range": False, "weight_pattern": "identity", "weight_observer_max": None,
                 "output_observer_max": None, "output_observer_min": None, "input_scale": None, "weight_scale": None,
                 "output_scale": None}
WEIGHT_MATRICES = {
    "identity": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
    "negative": ((-1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, -1.0)),
    "mixed": ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, 1.0)),
    "dense": ((1.0, 0.5, -0.25), (-0.5, 1.0, 0.5), (0.25, -0.5, 1.0)),
}


def make_qconfig(observer: str, knobs=None):
    knobs = {**DEFAULT_KNOBS, **(knobs or {})}
    tq = torch.quantization
    if observer == "fused":
        fq = tq.FusedMovingAvgObsFakeQuantize
    elif observer == "plain":
        fq = tq.FakeQuantize
    else:
        raise ValueError("observer must be one of %s, got %r" % (OBSERVERS, observer))
    activation = fq.with_args(observer=tq.MovingAverageMinMaxObserver,
                              quant_min=0, quant_max=255, reduce_range=knobs["reduce_range"])
    per_channel = knobs["weight_qscheme"].startswith("per_channel")
    weight_args = dict(quant_min=knobs["weight_quant_min"], quant_max=127, dtype=torch.qint8,
                       qscheme=getattr(torch, knobs["weight_qscheme"]))
    if per_channel:  # along the conv's output channels
        weight = fq.with_args(observer=tq.MovingAveragePerChannelMinMaxObserver, ch_axis=0,
                              **weight_args)
    else:
        weight = fq.with_args(observer=tq.MovingAverageMinMaxObserver, **weight_args)
    return tq.QConfig(activation=activation, weight=weight)


class SeedModel(nn.Module):
    """QuantStub -> Conv2d(3, 3, 1, 1) -> ReLU -> DeQuantStub (attribute names as in the seed)."""

    def __init__(self, qconfig):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1, 1)
        self.act = nn.ReLU()
        self.quant = torch.quantization.QuantStub(qconfig)
        self.dequant = torch.quantization.DeQuantStub()
        self.qconfig = qconfig

    def forward(self, x):
        return self.dequant(self.act(self.conv(self.quant(x))))


def hand_set_qparams(m, k: float, weight_min: float, weight_max: float, knobs=None) -> None:
    """The seed's 'theoretical' qparams: each fake-quant module gets a scale computed in double
    (the tensor constructor rounds it to float32) and its observer a [min, max] range. On the
    fused modules the scales are overwritten by the next forward; that is the point. `knobs`
    may override the scales and the output observer's max (None keeps the seed's value)."""
    knobs = {**DEFAULT_KNOBS, **(knobs or {})}

    def pick(key, seed_value):
        return seed_value if knobs[key] is None else float(knobs[key])

    targets = (
        # module,                        scale,                               observer min/max
        (m.conv.weight_fake_quant,       pick("weight_scale", 2.0 * k / 255.0), weight_min, weight_max),
        (m.conv.activation_post_process, pick("output_scale", k / 255.0),
         pick("output_observer_min", 0.0),
         pick("output_observer_max", k)),
        (m.quant.activation_post_process, pick("input_scale", 1.0 / 255.0), 0.0, 1.0),
    )
    for module, scale, low, high in targets:
        if isinstance(low, list):
            # Per-channel weights (qparity's generalisation of the seed): one observer range per
            # output channel, the hand-set scale repeated, zero points starting at 0.
            module.scale = torch.Tensor([scale] * len(low))
            module.zero_point = torch.zeros(len(low), dtype=torch.int)
            module.activation_post_process.min_val = torch.tensor(low)
            module.activation_post_process.max_val = torch.tensor(high)
            continue
        module.scale = torch.Tensor([scale])
        module.activation_post_process.min_val = torch.tensor(low)
        module.activation_post_process.max_val = torch.tensor(high)


def seed_input(rows: int) -> torch.Tensor:
    """[1, 3, rows, 256], value i/255 at column i (float32 division, as the seed)."""
    return torch.arange(0, WIDTH).repeat(1, 3, rows, 1) / 255.0


def _rows_identical(bins: np.ndarray) -> bool:
    ref = bins[0, 0, 0, :]
    return bool((bins == ref[None, None, None, :]).all())


def run_seed(k: float, engine: str, observer: str, rows: int, knobs=None,
             full_bins: bool = False) -> dict:
    """The seed experiment in real PyTorch (layout in the module docstring). With
    full_bins=True the result also has "full_bins": {"fake_quant": ndarray, "int8": ndarray},
    every output bin of each path as int64 arrays of shape [1, 3, rows, 256] (not JSON-ready;
    the other keys are unchanged). A refused configuration returns {"scenario", "error"} only."""
    if engine not in ENGINES:
        raise ValueError("engine must be one of %s, got %r" % (ENGINES, engine))
    if rows < 1:
        raise ValueError("rows must be >= 1")
    k = float(k)
    knobs = {**DEFAULT_KNOBS, **(knobs or {})}
    tq = torch.quantization
    torch.backends.quantized.engine = engine
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qconfig = make_qconfig(observer, knobs)
        model = SeedModel(qconfig)
        model.conv.bias = nn.Parameter(torch.zeros_like(model.conv.bias))
        matrix = torch.tensor(WEIGHT_MATRICES[knobs["weight_pattern"]])
        model.conv.weight = nn.Parameter(k * matrix.reshape(model.conv.weight.shape))
        if knobs["weight_qscheme"].startswith("per_channel"):
            rows_of_w = model.conv.weight.detach().reshape(3, -1)
            weight_min = [min(0.0, float(r.min())) for r in rows_of_w]
            weight_max = [max(0.0, float(r.max())) for r in rows_of_w]
            if knobs["weight_observer_max"] is not None:
                weight_max = [float(knobs["weight_observer_max"])] * 3
        else:
            weight_min = min(0.0, float(model.conv.weight.min()))
            weight_max = max(0.0, float(model.conv.weight.max()))
            if knobs["weight_observer_max"] is not None:
                weight_max = float(knobs["weight_observer_max"])
        tq.fuse_modules(model, [["conv", "act"]], inplace=True)

        m = tq.prepare_qat(model).train()
        m.eval()
        m.apply(tq.disable_observer).eval()
        hand_set_qparams(m, k, weight_min, weight_max, knobs)

        x = seed_input(rows)

        # ---- fake-quant (QAT) path -------------------------------------------------------
        captured = {}

        def grab(_mod, inp):
            captured["x"] = inp[0].detach().clone()

        handle = m.conv.activation_post_process.register_forward_pre_hook(grab)
        expected_fp32 = m(x).detach()
        handle.remove()

        wfq, ofq, ifq = m.conv.weight_fake_quant, m.conv.activation_post_process, m.quant.activation_post_process
        fq_out_scale, fq_out_zp = ofq.scale.reshape(-1)[0].item(), int(ofq.zero_point.reshape(-1)[0].item())
        fq_path = {
            "weight_scale": f32(wfq.scale.reshape(-1)[0].item()),
            "weight_zero_point": int(wfq.zero_point.reshape(-1)[0].item()),
            "input_scale": f32(ifq.scale.reshape(-1)[0].item()),
            "input_zero_point": int(ifq.zero_point.reshape(-1)[0].item()),
            "output_scale": f32(fq_out_scale),
            "output_zero_point": fq_out_zp,
        }
        fq_q = torch.quantize_per_tensor(captured["x"], float(fq_out_scale), fq_out_zp, torch.quint8)
        # quantize_per_tensor clamps to quint8's [0, 255]; the fake quant clamps to its own range.
        fq_bins_t = fq_q.int_repr().clamp(ofq.activation_post_process.quant_min,
                                          ofq.activation_post_process.quant_max)
        fq_q = torch._make_per_tensor_quantized_tensor(fq_bins_t, float(fq_out_scale), fq_out_zp)
        # The bins must be the ones the fake-quant output module really chose: dequantizing them
        # has to give the QAT output bit for bit (DeQuantStub is the identity in the QAT model).
        redeq = fq_q.dequantize()
        same = (redeq.view(torch.int32) == expected_fp32.view(torch.int32))
        assert bool(same.all()), (
            "fake-quant bins do not reproduce the QAT output for %d of %d elements (k=%r, %s, %s)"
            % (int((~same).sum()), same.numel(), k, engine, observer))

        # ---- int8 (converted) path -------------------------------------------------------
        m.dequant = nn.Identity()
        try:
            mq = tq.convert(m, inplace=False)
            out_q = mq(x)
        except RuntimeError as e:  # the engine refuses the model (e.g. onednn, weight zp != 0)
            return {"scenario": {"k": k, "backend": engine, "observer": observer,
                                 "rows": int(rows), "knobs": knobs},
                    "error": str(e).splitlines()[0]}

    qw = mq.conv.weight()
    if qw.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        w_scale0, w_zp0 = float(qw.q_per_channel_scales()[0]), int(qw.q_per_channel_zero_points()[0])
    else:
        w_scale0, w_zp0 = qw.q_scale(), qw.q_zero_point()
    int8_path = {
        "weight_scale": f32(w_scale0),
        "weight_zero_point": int(w_zp0),
        "input_scale": f32(float(mq.quant.scale)),
        "input_zero_point": int(mq.quant.zero_point),
        "output_scale": f32(out_q.q_scale()),
        "output_zero_point": int(out_q.q_zero_point()),
    }

    error = torch.abs(expected_fp32 - out_q.dequantize())
    fq_bins = fq_bins_t.numpy().astype(np.int64)
    i8_bins = out_q.int_repr().numpy().astype(np.int64)
    err_np = error.numpy()
    fp32_bad = err_np != 0
    bin_bad = fq_bins != i8_bins
    any_bad = (fp32_bad | bin_bad).reshape(-1)
    if any_bad.any():
        flat = int(np.argmax(any_bad))
        idx = [int(v) for v in np.unravel_index(flat, err_np.shape)]
        first = {"index": idx,
                 "error_fp32": f32(float(err_np[tuple(idx)])),
                 "expected_q": int(fq_bins[tuple(idx)]),
                 "actual_q": int(i8_bins[tuple(idx)])}
    else:
        first = None

    fq_path["bins_row"] = [int(v) for v in fq_bins[0, 0, 0, :]]
    int8_path["bins_row"] = [int(v) for v in i8_bins[0, 0, 0, :]]
    key_order = ["bins_row", "weight_scale", "weight_zero_point", "input_scale", "input_zero_point",
                 "output_scale", "output_zero_point"]
    result = {
        "scenario": {"k": k, "backend": engine, "observer": observer, "rows": int(rows),
                     "knobs": knobs},
        "paths": {"fake_quant": {key: fq_path[key] for key in key_order},
                  "int8": {key: int8_path[key] for key in key_order}},
        "compare": {
            "error_mean": f32(float(torch.mean(error))),
            "error_max": f32(float(torch.max(error))),
            "fp32_mismatch_count": int(fp32_bad.sum()),
            "bin_mismatch_count": int(bin_bad.sum()),
            "first_mismatch": first,
            "rows_identical": _rows_identical(fq_bins) and _rows_identical(i8_bins),
        },
    }
    if full_bins:
        result["full_bins"] = {"fake_quant": fq_bins, "int8": i8_bins}
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--k", type=float, default=1.0, help="conv weight multiplier (weight = k*I)")
    ap.add_argument("--backend", choices=ENGINES, default="qnnpack")
    ap.add_argument("--observer", choices=OBSERVERS, default="fused")
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--weight-qscheme", default="per_tensor_symmetric",
                    choices=("per_tensor_symmetric", "per_tensor_affine", "per_channel_symmetric",
                             "per_channel_affine"))
    ap.add_argument("--weight-quant-min", type=int, default=-128)
    ap.add_argument("--reduce-range", action="store_true")
    ap.add_argument("--weight-pattern", default="identity", choices=tuple(WEIGHT_MATRICES))
    ap.add_argument("--weight-observer-max", type=float, default=None)
    ap.add_argument("--output-observer-max", type=float, default=None)
    ap.add_argument("--output-observer-min", type=float, default=None)
    ap.add_argument("--input-scale", type=float, default=None)
    ap.add_argument("--weight-scale", type=float, default=None)
    ap.add_argument("--output-scale", type=float, default=None)
    ap.add_argument("--json", metavar="FILE", help="write the JSON here instead of stdout")
    a = ap.parse_args(argv)
    knobs = {"weight_qscheme": a.weight_qscheme, "weight_quant_min": a.weight_quant_min,
             "reduce_range": a.reduce_range, "weight_pattern": a.weight_pattern,
             "weight_observer_max": a.weight_observer_max,
             "output_observer_max": a.output_observer_max,
             "output_observer_min": a.output_observer_min, "input_scale": a.input_scale,
             "weight_scale": a.weight_scale, "output_scale": a.output_scale}
    res = run_seed(a.k, a.backend, a.observer, a.rows, knobs)
    text = json.dumps(res, indent=2)
    if a.json:
        with open(a.json, "w") as fh:
            fh.write(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
