"""quantized::linear / linear_relu (and the converted nnq.Linear / nniq.LinearReLU modules) on the
qnnpack and onednn engines: the conv requantization table (shared notes 6.1-6.3) applies unchanged.

qnnpack (qlinear.cpp:431-562 -> q8gemm, same tail as conv):
  acc = sum_k (x - x_zp)(w - w_zp)   (exact int32) ;  qb = quantize(bias, double(w_s)*double(x_s), 0, qint32)
  M   = f(f(w_s*x_s) * f(1/out_s));   y = clamp(sat16(RNE(f(f(acc+qb)*M))) + zp, relu ? zp : 0, 255)
onednn (qlinear.cpp:612-690, ideep matmul, oneDNN 2.6.3):
  src=f(1/double(x_s)), dst=f(1/double(out_s)), w_inv = f(1/double(w_s)) per tensor | f(1.0f/w_s) per channel
  bs=f(src*w_inv), OS=f(dst/bs), b'=f(b*bs);  d=f(f(f(acc)+b')*OS); relu: max(d,0); y=RNE(clamp(f(d+zp),0,255))
  acc on this non-VNNI AVX2 CPU: pairs (k, k+1) along K saturate to int16 (vpmaddubsw), then - x_zp*sum(w).
Edge bias: power-of-two scales giving exact .5 ties, odd/extreme zero points, 0/255-heavy inputs, no bias,
3-D inputs, weight zp != 0 (qnnpack), the same packed weight reused with changing qparams (caches).
"""
import sys, os, warnings
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np
import torch
from emu_ops import f32, f64, quantize_val, edge_u8

warnings.filterwarnings("ignore")
rng = np.random.default_rng(10)


def qnnpack_ref(acc, bias, w_scales, x_s, out_s, zp, relu):
    N = acc.shape[-1]
    w_scales = np.broadcast_to(np.asarray(w_scales, f64), (N,))
    if bias is not None:
        qb = np.array([quantize_val(np.array([bias[j]], f32), f32(f64(w_scales[j]) * f64(x_s)), 0, -2**31, 2**31 - 1)[0]
                       if True else 0 for j in range(N)], np.int64)
        acc = acc + qb
    acc = ((acc + 2**31) % 2**32) - 2**31
    inv_out = f32(f32(1) / f32(out_s))
    M = np.array([f32(f32(f32(w_scales[j]) * f32(x_s)) * inv_out) for j in range(N)], f32)
    y = np.rint((acc.astype(f32) * M).astype(f32)).astype(np.int64)
    y = np.clip(y, -32768, 32767) + zp
    return np.clip(y, zp if relu else 0, 255)


def onednn_ref(acc, bias, w_scales, x_s, out_s, zp, relu, per_channel):
    N = acc.shape[-1]
    w_scales = np.broadcast_to(np.asarray(w_scales, f64), (N,))
    w_inv = np.array([f32(1) / f32(s) if per_channel else f32(1.0 / f64(s)) for s in w_scales], f32)
    src = f32(1.0 / f64(x_s)); dst = f32(1.0 / f64(out_s))
    bs = (src * w_inv).astype(f32); OS = (dst / bs).astype(f32)
    d = acc.astype(np.int32).astype(f32)
    if bias is not None:
        d = (d + (np.asarray(bias, f32) * bs).astype(f32)).astype(f32)
    d = (d * OS).astype(f32)
    if relu:
        d = np.maximum(d, f32(0))
    d = np.clip((d + f32(zp)).astype(f32), f32(0), f32(255))
    return np.rint(d).astype(np.int64)


def acc_exact(xq, x_zp, wi, w_zp):
    return (xq.astype(np.int64) - x_zp) @ (wi.astype(np.int64) - np.asarray(w_zp, np.int64).reshape(-1, 1)).T


def acc_onednn_avx2(xq, x_zp, wi):
    Mr, K = xq.shape
    Kp = (K + 1) // 2 * 2
    xp = np.zeros((Mr, Kp), np.int64); xp[:, :K] = xq
    wp = np.zeros((wi.shape[0], Kp), np.int64); wp[:, :K] = wi
    pr = xp[:, None, :] * wp[None, :, :]
    return np.clip(pr[:, :, 0::2] + pr[:, :, 1::2], -32768, 32767).sum(-1) - x_zp * wi.astype(np.int64).sum(1)[None, :]


def pick_scales(tie):
    if tie:   # powers of two: every product/reciprocal exact -> many exact .5 ties
        x_s = 2.0 ** int(rng.integers(-8, -3)); w_e = int(rng.integers(-9, -5))
        return x_s, w_e
    return float(f32(10 ** rng.uniform(-2.5, -1))), None


allok = True
# ideep's process-wide primitive cache key (attributes.hpp:303-311) holds shapes, bias/relu and the
# output scales but NOT the src/dst zero points: a later call with the same key runs with the zero
# points of the first call that created the primitive.  Emulated with this dict.
onednn_key_zps = {}
for engine in ["qnnpack", "onednn"]:
    torch.backends.quantized.engine = engine
    for per_channel in [False, True]:
        for relu in [False, True]:
            bad = tot = nsat = 0
            for trial in range(40):
                K = int(rng.choice([1, 2, 3, 7, 16, 33, 64, 100]))
                N = int(rng.choice([1, 3, 8, 17]))
                tie = trial % 2 == 0
                x_s, w_e = pick_scales(tie)
                if per_channel:
                    ws = np.array([2.0 ** (w_e + int(rng.integers(-1, 2))) if tie else float(f32(10 ** rng.uniform(-3, -1.5)))
                                   for _ in range(N)])
                    wzp = np.zeros(N, np.int64)
                    wi = rng.integers(-128, 128, size=(N, K))
                    qw = torch._make_per_channel_quantized_tensor(torch.from_numpy(wi.astype(np.int8)),
                                                                  torch.from_numpy(ws), torch.from_numpy(wzp), 0)
                else:
                    ws = np.array([2.0 ** w_e if tie else float(f32(10 ** rng.uniform(-3, -1.5)))])
                    wzp = np.array([int(rng.integers(-20, 21)) if (engine == "qnnpack" and trial % 3 == 0) else 0])
                    wi = np.clip(rng.integers(-128, 128, size=(N, K)), -128, 127)
                    qw = torch._make_per_tensor_quantized_tensor(torch.from_numpy(wi.astype(np.int8)), float(ws[0]), int(wzp[0]))
                with_bias = trial % 4 != 3
                if with_bias:
                    bias = (rng.standard_normal(N) * 0.3).astype(f32)
                    if tie:   # biases on a coarse grid so the float bias keeps the .5 ties
                        bias = (np.round(bias * 8) / 8).astype(f32)
                else:
                    bias = None
                packed = torch.ops.quantized.linear_prepack(qw, torch.from_numpy(bias) if bias is not None else None)
                cached = None     # qnnpack: (x_s, out_s) when the requant scales were last generated
                for call in range(3):     # reuse the packed weight with new activation/output qparams
                    if call > 0 and not tie:
                        x_s = float(f32(10 ** rng.uniform(-2.5, -1)))
                    x_zp = int(rng.choice([0, 255, 128, 1, int(rng.integers(0, 256))]))
                    shape = (int(rng.integers(1, 6)), K) if call != 2 else (2, int(rng.integers(1, 4)), K)
                    xq = edge_u8(rng, shape).astype(np.int64)
                    qx = torch._make_per_tensor_quantized_tensor(torch.from_numpy(xq.astype(np.uint8)), x_s, x_zp)
                    x2 = xq.reshape(-1, K)
                    acc = acc_exact(x2, x_zp, wi, wzp)
                    est = np.abs(acc * np.asarray(ws).reshape(1, -1) * x_s).max() + 1e-6
                    out_s = 2.0 ** int(np.ceil(np.log2(est * 2 / 255))) if tie else float(f32(max(est * 2 / 255, 1e-5)))
                    out_zp = int(rng.choice([0, 255, 128, 127, 1, int(rng.integers(0, 256))]))
                    if relu and engine == "qnnpack" and out_zp == 255:
                        out_zp = 254
                    op = torch.ops.quantized.linear_relu if relu else torch.ops.quantized.linear
                    y = op(qx, packed, out_s, out_zp).int_repr().numpy().astype(np.int64).reshape(-1, N)
                    if engine == "qnnpack":
                        # qlinear.cpp:455-464: requant scales (and the int32 bias) are regenerated only
                        # when the input scale differs from the previous call on this packed weight
                        if cached is None or cached[0] != x_s:
                            cached = (x_s, out_s)
                        ref = qnnpack_ref(acc, bias, ws, x_s, cached[1], out_zp, relu)
                    else:
                        # key: src/dst dims, bias, relu post-op, output scales f(f(1/out_s) / f(f(1/x_s) * w_inv))
                        w_inv = np.array([f32(1) / f32(s) if per_channel else f32(1.0 / f64(s)) for s in np.atleast_1d(ws)], f32)
                        op_sc = (f32(1.0 / f64(out_s)) / (f32(1.0 / f64(x_s)) * w_inv).astype(f32)).astype(f32)
                        key = (x2.shape, N, bias is not None, relu, op_sc.tobytes())
                        ezp = onednn_key_zps.setdefault(key, (x_zp, out_zp))
                        acc_s = acc_onednn_avx2(x2, ezp[0], wi)
                        ref = onednn_ref(acc_s, bias, ws, x_s, out_s, ezp[1], relu, per_channel)
                        nsat += int((y != onednn_ref(acc_exact(x2, ezp[0], wi, [0]), bias, ws, x_s, out_s, ezp[1], relu,
                                                     per_channel)).sum())
                    bad += int((y != ref).sum()); tot += y.size
            ok = bad == 0
            allok &= ok
            print("%s %-8s linear%s %-11s: %d/%d mismatches%s" % (
                "PASS" if ok else "FAIL", engine, "_relu" if relu else "     ", "per-channel" if per_channel else "per-tensor",
                bad, tot, "" if engine == "qnnpack" else " (an exact-accumulator model would mismatch %d)" % nsat))

# converted modules: nnq.Linear / nniq.LinearReLU call the same ops with their stored scale/zero_point
import torch.ao.nn.quantized as nnq
for engine in ["qnnpack", "onednn"]:
    torch.backends.quantized.engine = engine
    bad = 0
    lin = torch.nn.Linear(24, 10)
    qlin = nnq.Linear(24, 10)
    wq = torch.quantize_per_tensor(lin.weight.detach(), 0.01, 0, torch.qint8)
    qlin.set_weight_bias(wq, lin.bias.detach())
    qlin.scale, qlin.zero_point = 0.05, 77
    xq = torch.quantize_per_tensor(torch.randn(6, 24), 0.03, 100, torch.quint8)
    a = qlin(xq).int_repr()
    b = torch.ops.quantized.linear(xq, qlin._packed_params._packed_params, 0.05, 77).int_repr()
    bad = int((a != b).sum())
    allok &= bad == 0
    print("%s %-8s nnq.Linear forward == torch.ops.quantized.linear(x, packed, scale, zero_point): %d mismatches" %
          ("PASS" if bad == 0 else "FAIL", engine, bad))
print("%s %s: %s" % ("PASS" if allok else "FAIL", os.path.basename(__file__), "all checks above bit-exact (0 mismatches)" if allok else "see FAIL lines above"))
