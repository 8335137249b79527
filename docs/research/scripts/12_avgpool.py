"""avg_pool2d and adaptive_avg_pool2d on quantized (quint8) tensors: which kernel runs and its rounding.

avg_pool2d (quantized/cpu/AveragePool2d.cpp:402-429):
  Q  qnnpack engine, quint8, !ceil_mode, 4-D  -> QNNPACK q8avgpool (average-pooling.c):
       K = kH*kW, scale = f(in_s / f(out_s * f(K)))   (in_s = out_s = f(input scale))
       acc = sum over window taps of (x - zp), padded taps read zp (contribute 0)
       y = clamp(sat16(RNE(f(f(acc) * scale))) + zp, 0, 255)
       count_include_pad and divisor_override are IGNORED (always divides by K); K = 1 is refused.
  G1 generic NCHW (avg_pool2d_out_frame, l.24-111):
       div = divisor_override | (count_include_pad ? pool_size : inside size)
       mult = f(1.0 / div) (double division -> float);  acc = sum(x) - inside*zp
       y = clamp(RNE(f(f(float(acc) * mult) + float(zp))), 0, 255)      (zp added BEFORE rounding)
  G2 generic channels-last (qavg_pool2d_nhwc_kernel, QuantizedOpKernels.cpp:1876-1991):
       mult = f(f(f(in_s)/f(out_s)) / float(div)) = f(1.0f/div);  acc = -zp*inside + sum(x)
       channels [0, 8*floor(C/8)): QuantizeAvx2: y = clamp(RNE(f(float(acc)*mult)) + zp)
       remaining channels: quantize_val(scale=f(1/mult)): y = clamp(f(zp + RNE(f(acc * f(1/f(1/mult))))))
adaptive_avg_pool2d (AdaptiveAveragePooling.cpp:302-318):
  Q  qnnpack engine, quint8, input size != output size, H%OH == 0 and W%OW == 0 -> the QNNPACK
       avg pool above with kernel = stride = (H/OH, W/OW), no padding.
  G1 generic NCHW (adaptive_avg_pool_single_out_frame l.47-125): windows start=floor(f(o*I)/O),
       end=ceil(f((o+1)*I)/O); r = f(f(float(1.0/kD)=1 / kH) / kW);  y = (uint8) RNE(f(float(sum x) * r))
       (raw bins averaged, NO zero-point handling, no clamp)
  G2 generic channels-last (_qadaptive_avg_pool_kernel l.1694-1801): mult = f(f(in_s/out_s)/size);
       acc = -zp*size + sum(x);  y = quantize_val(f(1/mult), zp, acc) for all channels
Output qparams = input qparams everywhere.
"""
import sys, os, warnings, math
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np
import torch
import torch.nn.functional as F
from emu_ops import f32, f64, edge_u8, mk_q, quantize_val, quantize_avx2

warnings.filterwarnings("ignore")
rng = np.random.default_rng(12)


def pool_out(i, k, p, s, ceil):
    o = (i + 2 * p - k + ((s - 1) if ceil else 0)) // s + 1
    if ceil and (o - 1) * s >= i + p:
        o -= 1
    return o


def windows(H, W, k, s, p, ceil):
    OH, OW = pool_out(H, k[0], p[0], s[0], ceil), pool_out(W, k[1], p[1], s[1], ceil)
    res = []
    for oh in range(OH):
        for ow in range(OW):
            hs = oh * s[0] - p[0]; ws = ow * s[1] - p[1]
            he = min(hs + k[0], H + p[0]); we = min(ws + k[1], W + p[1])
            pool_size = (he - hs) * (we - ws)
            hs2, ws2, he2, we2 = max(hs, 0), max(ws, 0), min(he, H), min(we, W)
            res.append((oh, ow, hs2, he2, ws2, we2, pool_size))
    return OH, OW, res


def avgpool_generic(x, s_in, zp, k, st, p, ceil, cip, divo, nhwc):
    N, C, H, W = x.shape
    OH, OW, wins = windows(H, W, k, st, p, ceil)
    y = np.zeros((N, C, OH, OW), np.int64)
    for (oh, ow, hs, he, ws, we, pool_size) in wins:
        size = (he - hs) * (we - ws)
        div = divo if divo else (pool_size if cip else size)
        ssum = x[:, :, hs:he, ws:we].astype(np.int64).sum((2, 3))
        if not nhwc:
            mult = f32(1.0 / div)
            acc = (ssum - size * zp).astype(f32)
            y[:, :, oh, ow] = np.clip(np.rint(((acc * mult).astype(f32) + f32(zp)).astype(f32)), 0, 255)
        else:
            mult = f32(f32(f32(s_in) / f32(s_in)) / f32(div))
            acc = (-zp * size + ssum).astype(np.int64)
            cv = C // 8 * 8
            y[:, :cv, oh, ow] = quantize_avx2(acc[:, :cv].astype(f32), mult, zp)
            y[:, cv:, oh, ow] = quantize_val(acc[:, cv:].astype(f32), f32(f32(1) / mult), zp)
    return y


def avgpool_qnnpack(x, s_in, zp, k, st, p):
    N, C, H, W = x.shape
    K = k[0] * k[1]
    scale = f32(f32(s_in) / f32(f32(s_in) * f32(K)))
    OH, OW, wins = windows(H, W, k, st, p, False)
    y = np.zeros((N, C, OH, OW), np.int64)
    for (oh, ow, hs, he, ws, we, _) in wins:
        acc = (x[:, :, hs:he, ws:we].astype(np.int64) - zp).sum((2, 3))
        v = np.rint((acc.astype(f32) * scale).astype(f32)).astype(np.int64)
        y[:, :, oh, ow] = np.clip(np.clip(v, -32768, 32767) + zp, 0, 255)
    return y


def ada_ranges(I, O):
    return [(int(math.floor(f32(o * I) / f32(O))), int(math.ceil(f32((o + 1) * I) / f32(O)))) for o in range(O)]


def adaptive_generic(x, s_in, zp, OH, OW, nhwc):
    N, C, H, W = x.shape
    y = np.zeros((N, C, OH, OW), np.int64)
    for oh, (h0, h1) in enumerate(ada_ranges(H, OH)):
        for ow, (w0, w1) in enumerate(ada_ranges(W, OW)):
            kH, kW = h1 - h0, w1 - w0
            ssum = x[:, :, h0:h1, w0:w1].astype(np.int64).sum((2, 3))
            if not nhwc:
                r = f32(f32(f32(1.0 / 1) / f32(kH)) / f32(kW))
                y[:, :, oh, ow] = np.rint((ssum.astype(f32) * r).astype(f32)).astype(np.int64) & 0xFF
            else:
                size = kH * kW
                mult = f32(f32(f32(s_in) / f32(s_in)) / f32(size))
                acc = (-zp * size + ssum)
                y[:, :, oh, ow] = quantize_val(acc.astype(f32), f32(f32(1) / mult), zp)
    return y


def nc11_fix(ref, H, W):
    # NHWC kernel chosen for an (N,C,1,1) input but the output allocated NCHW (see 11_maxpool.py)
    if H == 1 and W == 1:
        n, c, oh, ow = ref.shape
        return np.ascontiguousarray(ref.transpose(0, 2, 3, 1)).reshape(n, c, oh, ow)
    return ref


allok = True
for engine in ["qnnpack", "onednn"]:
    torch.backends.quantized.engine = engine
    st = dict(bad=0, tot=0, qp=0, n=0, refused=[], paths={})
    for trial in range(500):
        kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        ph, pw = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
        ceil = bool(rng.random() < 0.25)
        cip = bool(rng.random() < 0.6)
        divo = int(rng.integers(1, 20)) if rng.random() < 0.15 else None
        N = int(rng.integers(1, 3)); C = int(rng.choice([1, 3, 7, 8, 9, 16, 31, 33, 130]))
        H = int(rng.integers(max(1, kh - 2 * ph), 11)); W = int(rng.integers(max(1, kw - 2 * pw), 11))
        if pool_out(H, kh, ph, sh, ceil) < 1 or pool_out(W, kw, pw, sw, ceil) < 1:
            continue
        x = edge_u8(rng, (N, C, H, W))
        s_in = float(f32(10 ** rng.uniform(-3, 0))); zp = int(rng.choice([0, 255, 1, 127, 128, int(rng.integers(0, 256))]))
        nhwc = bool(trial % 2)
        q = mk_q(x, s_in, zp, channels_last=nhwc)
        try:
            y = F.avg_pool2d(q, (kh, kw), (sh, sw), (ph, pw), ceil_mode=ceil, count_include_pad=cip, divisor_override=divo)
        except RuntimeError:
            st["refused"].append((engine, kh * kw, ceil)); continue
        if engine == "qnnpack" and not ceil:
            path = "Q"
            ref = avgpool_qnnpack(x, s_in, zp, (kh, kw), (sh, sw), (ph, pw))
        else:
            cl = nhwc or (H == 1 and W == 1) or C == 1
            path = "G2" if cl else "G1"
            ref = avgpool_generic(x, s_in, zp, (kh, kw), (sh, sw), (ph, pw), ceil, cip, divo, cl)
            ref = nc11_fix(ref, H, W)
        yi = y.int_repr().numpy().astype(np.int64)
        b = int((yi != ref).sum()) if yi.shape == ref.shape else ref.size
        st["bad"] += b; st["tot"] += ref.size; st["n"] += 1
        st["paths"][path] = st["paths"].get(path, 0) + 1
        st["qp"] += int(y.q_scale() != s_in or y.q_zero_point() != zp)
    ref_ok = all(k == 1 and not c and e == "qnnpack" for e, k, c in st["refused"])
    ok = st["bad"] == 0 and st["qp"] == 0 and ref_ok
    allok &= ok
    print("%s %-8s avg_pool2d: %d cases %s: %d/%d bin mismatches, %d qparam mismatches; %d refused (all 1x1 on QNNPACK: %s)" %
          ("PASS" if ok else "FAIL", engine, st["n"], st["paths"], st["bad"], st["tot"], st["qp"], len(st["refused"]), ref_ok))

for engine in ["qnnpack", "onednn"]:
    torch.backends.quantized.engine = engine
    st = dict(bad=0, tot=0, qp=0, n=0, paths={})
    for trial in range(500):
        N = int(rng.integers(1, 3)); C = int(rng.choice([1, 3, 7, 8, 9, 16, 31, 33, 130]))
        H = int(rng.integers(1, 15)); W = int(rng.integers(1, 15))
        mode = trial % 3
        if mode == 0:
            OH, OW = 1, 1                          # global pooling
        elif mode == 1:                            # divisible (qnnpack-eligible)
            OH = int(rng.choice([d for d in range(1, H + 1) if H % d == 0])); OW = int(rng.choice([d for d in range(1, W + 1) if W % d == 0]))
        else:
            OH, OW = int(rng.integers(1, H + 3)), int(rng.integers(1, W + 3))
        x = edge_u8(rng, (N, C, H, W))
        s_in = float(f32(10 ** rng.uniform(-3, 0))); zp = int(rng.choice([0, 255, 1, 127, 128, int(rng.integers(0, 256))]))
        nhwc = bool(trial % 2)
        q = mk_q(x, s_in, zp, channels_last=nhwc)
        y = F.adaptive_avg_pool2d(q, (OH, OW))
        if engine == "qnnpack" and not (H == OH and W == OW) and H % OH == 0 and W % OW == 0:
            path = "Q"
            ref = avgpool_qnnpack(x, s_in, zp, (H // OH, W // OW), (H // OH, W // OW), (0, 0))
        else:
            cl = nhwc or (H == 1 and W == 1) or C == 1
            path = "G2" if cl else "G1"
            ref = nc11_fix(adaptive_generic(x, s_in, zp, OH, OW, cl), H, W)
        yi = y.int_repr().numpy().astype(np.int64)
        b = int((yi != ref).sum()) if yi.shape == ref.shape else ref.size
        st["bad"] += b; st["tot"] += ref.size; st["n"] += 1
        st["paths"][path] = st["paths"].get(path, 0) + 1
        st["qp"] += int(y.q_scale() != s_in or y.q_zero_point() != zp)
    ok = st["bad"] == 0 and st["qp"] == 0
    allok &= ok
    print("%s %-8s adaptive_avg_pool2d: %d cases %s: %d/%d bin mismatches, %d qparam mismatches" %
          ("PASS" if ok else "FAIL", engine, st["n"], st["paths"], st["bad"], st["tot"], st["qp"]))

# how much do the kernels disagree on the same data?  (even window sizes produce exact .5 ties)
for (hw, k) in [(7, 7), (8, 2), (8, 4), (6, 3)]:
    x = edge_u8(rng, (32, 16, hw, hw))
    for zp in [3, 4]:
        a = adaptive_generic(x, 0.05, zp, hw // k, hw // k, False); b = adaptive_generic(x, 0.05, zp, hw // k, hw // k, True)
        c = avgpool_qnnpack(x, 0.05, zp, (k, k), (k, k), (0, 0))
        d = avgpool_generic(x, 0.05, zp, (k, k), (k, k), (0, 0), False, True, None, False)
        print("   %dx%d input, %dx%d windows, zp=%d: adaptive G1 vs G2 differ in %d/%d outputs, G2 vs QNNPACK in %d, "
              "avg_pool2d G1 vs G2 in %d" % (hw, hw, k, k, zp, (a != b).sum(), a.size, (b != c).sum(), (d != b).sum()))
print("%s %s: %s" % ("PASS" if allok else "FAIL", os.path.basename(__file__), "all checks above bit-exact (0 mismatches)" if allok else "see FAIL lines above"))
