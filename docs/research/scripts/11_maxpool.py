"""max_pool2d on quantized (quint8) tensors, qnnpack and onednn engines, NCHW and channels-last inputs.

Routing (aten/src/ATen/native/Pooling.cpp:117-120 -> quantized/cpu/Pooling.cpp:367-401):
  engine qnnpack and quint8 and not ceil_mode -> QNNPACK u8maxpool (4-D input only)
  otherwise -> spatial_dilated_max_pooling (NCHW) or qmaxpool_2d_nhwc_kernel (channels-last)
Generic formula: y[n,c,oh,ow] = max over window taps inside the input of x[n,c,ih,iw] (raw bins),
padding taps ignored, a window with no tap inside gives 0 (numeric_limits<uint8>::lowest()).
QNNPACK formula (indirection.c:408-455): every tap index is clamped into the input,
ih = min(max(oh*sH + kh*dH - pH, 0), H-1) (same for w), i.e. replicate padding: differs from the
generic result only with dilation > 1 and padding (a clamped border tap that is not a window tap).
QNNPACK refuses a 1x1 window (RuntimeError). Output scale/zero point = input's.
Generic-path layout bug: an input with H = W = 1 is "channels-last contiguous", the NHWC kernel runs,
but the output is allocated NCHW -> the NHWC-ordered result is read as NCHW (only visible when the
output has more than one spatial position, i.e. with padding).
"""
import sys, os, warnings
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np
import torch
import torch.nn.functional as F
from emu_ops import edge_u8, mk_q

warnings.filterwarnings("ignore")
rng = np.random.default_rng(11)


def out_size(i, k, p, s, d, ceil):
    num = i + 2 * p - d * (k - 1) - 1
    o = (num + (s - 1 if ceil else 0)) // s + 1
    if ceil and (o - 1) * s >= i + p:
        o -= 1
    return o


def ref_maxpool_qnnpack(x, k, s, p, d):
    N, C, H, W = x.shape
    OH, OW = out_size(H, k[0], p[0], s[0], d[0], False), out_size(W, k[1], p[1], s[1], d[1], False)
    y = np.zeros((N, C, OH, OW), np.int64)
    for oh in range(OH):
        for ow in range(OW):
            hs = [min(max(oh * s[0] + i * d[0] - p[0], 0), H - 1) for i in range(k[0])]
            ws = [min(max(ow * s[1] + j * d[1] - p[1], 0), W - 1) for j in range(k[1])]
            y[:, :, oh, ow] = x[:, :, hs][:, :, :, ws].reshape(N, C, -1).max(-1)
    return y


def ref_maxpool(x, k, s, p, d, ceil):
    N, C, H, W = x.shape
    OH, OW = out_size(H, k[0], p[0], s[0], d[0], ceil), out_size(W, k[1], p[1], s[1], d[1], ceil)
    y = np.zeros((N, C, OH, OW), np.int64)
    for oh in range(OH):
        for ow in range(OW):
            hs = [oh * s[0] - p[0] + i * d[0] for i in range(k[0])]
            ws = [ow * s[1] - p[1] + j * d[1] for j in range(k[1])]
            hs = [h for h in hs if 0 <= h < H]; ws = [w for w in ws if 0 <= w < W]
            if not hs or not ws:      # window entirely in the padding (dilation): lowest() = 0
                y[:, :, oh, ow] = 0
                continue
            y[:, :, oh, ow] = x[:, :, hs][:, :, :, ws].reshape(N, C, -1).max(-1)
    return y


allok = True
qnn_vs_generic = 0
for engine in ["qnnpack", "onednn"]:
    torch.backends.quantized.engine = engine
    bad = tot = qp_bad = ncases = 0
    refused = []
    for trial in range(300):
        kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        ph, pw = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
        dh, dw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        ceil = bool(rng.random() < 0.3)
        N = int(rng.integers(1, 4)); C = int(rng.choice([1, 3, 8, 31, 32, 33, 64, 130]))
        H = int(rng.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 12)); W = int(rng.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 12))
        try:
            if out_size(H, kh, ph, sh, dh, ceil) < 1 or out_size(W, kw, pw, sw, dw, ceil) < 1:
                continue
        except ZeroDivisionError:
            continue
        x = edge_u8(rng, (N, C, H, W))
        s, zp = float(np.float32(rng.uniform(0.001, 0.1))), int(rng.integers(0, 256))
        q = mk_q(x, s, zp, channels_last=bool(trial % 2))
        try:
            y = F.max_pool2d(q, (kh, kw), (sh, sw), (ph, pw), (dh, dw), ceil_mode=ceil)
        except RuntimeError:
            refused.append((kh * kw, ceil))
            continue
        if engine == "qnnpack" and not ceil:
            ref = ref_maxpool_qnnpack(x.astype(np.int64), (kh, kw), (sh, sw), (ph, pw), (dh, dw))
            gen = ref_maxpool(x.astype(np.int64), (kh, kw), (sh, sw), (ph, pw), (dh, dw), ceil)
            qnn_vs_generic += int((ref != gen).sum())
        else:
            ref = ref_maxpool(x.astype(np.int64), (kh, kw), (sh, sw), (ph, pw), (dh, dw), ceil)
            if H == 1 and W == 1:     # NHWC kernel, NCHW output: reinterpret
                n_, c_, oh_, ow_ = ref.shape
                ref = np.ascontiguousarray(ref.transpose(0, 2, 3, 1)).reshape(n_, c_, oh_, ow_)
        yi = y.int_repr().numpy().astype(np.int64)
        if yi.shape != ref.shape:
            bad += ref.size; continue
        bad += int((yi != ref).sum()); tot += yi.size; ncases += 1
        qp_bad += int(y.q_scale() != s or y.q_zero_point() != zp)
    # QNNPACK refuses a 1x1 window ("1x1 pooling is meaningless", max-pooling.c) -> RuntimeError
    expect_refusal = engine == "qnnpack"
    ref_ok = all(k == 1 and not c for k, c in refused) and (expect_refusal or not refused)
    print("%s %-8s max_pool2d refusals: %d cases, all with a 1x1 window on the QNNPACK path: %s" %
          ("PASS" if ref_ok else "FAIL", engine, len(refused), ref_ok))
    ok = bad == 0 and qp_bad == 0 and ref_ok
    allok &= ok
    print("%s %-8s max_pool2d: %d cases (kernel 1-4, stride 1-3, pad, dilation 1-2, ceil_mode, NCHW/NHWC, C up to 130): "
          "%d/%d bin mismatches, %d qparam mismatches" % ("PASS" if ok else "FAIL", engine, ncases, bad, tot, qp_bad))

print("INFO qnnpack clamped-tap (replicate padding) results differ from the generic rule in %d outputs" % qnn_vs_generic)
# 3-D input (C,H,W): generic path works; qnnpack path demands 4-D
for engine in ["qnnpack", "onednn"]:
    torch.backends.quantized.engine = engine
    x = edge_u8(rng, (3, 6, 6)); q = mk_q(x, 0.05, 3)
    try:
        y = F.max_pool2d(q, 2).int_repr().numpy()
        ok = (y == ref_maxpool(x[None].astype(np.int64), (2, 2), (2, 2), (0, 0), (1, 1), False)[0]).all()
        print("%s %-8s max_pool2d on a 3-D (C,H,W) input: runs, bit-exact" % ("PASS" if ok else "FAIL", engine))
        allok &= bool(ok)
    except RuntimeError as e:
        print("INFO %-8s max_pool2d on a 3-D (C,H,W) input raises: %s" % (engine, str(e).splitlines()[0][:90]))
print("%s %s: %s" % ("PASS" if allok else "FAIL", os.path.basename(__file__), "all checks above bit-exact (0 mismatches)" if allok else "see FAIL lines above"))
