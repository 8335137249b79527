"""Quantized activations (quint8), qnnpack vs onednn (generic ATen kernels), bit-exact emulation.

relu / relu_ (qrelu.cpp:60-93, [K]:582-602): y = max(q, zp) (qnnpack: clamp op [zp,255]; relu_ always generic)
clamp / hardtanh / relu6 (qclamp.cpp:87-158, [K]:930-965; quantized::relu6 = hardtanh(0,6), qrelu.cpp:123-145):
   lo = quantize_val(s, zp, float(min)), hi = quantize_val(s, zp, float(max));  y = min(max(q, lo), hi)
   QNNPACK (qnnpack engine): same values, but the output tensor is allocated NCHW-contiguous while the
   data are written in the input's memory order: a channels-last input comes back scrambled.
generic "dequantize -> float op -> quantize" kernels (cpu_kernel_vec; blocks of 64 elements in memory order
   use the Vectorized lambda, the tail (and every chunk tail when a > 32768-element op is split across
   threads) the scalar lambda):
   vector : dx = fma(s, float(q), f(s*-zp));  y = op_vec(dx);  out = clamp(RNE(f(y * inv_v)) + zp_o, 0, 255)
   scalar : dx = f(f(s) * float(q-zp));      y = op_sc(dx);   out = clamp(f(zp_o + RNE(f(y * f(1/f(s_o))))))
   hardswish ([K]:1092-1133): op = f(f(x * min(max(f(x+3),0),6)) / 6); inv_v = f(1.0/double(s_o)); (s_o,zp_o) given
   hardsigmoid ([K]:865-928):  op = f(min(max(f(x+3),0),6) / 6);     s_o = 1/256, zp_o = 0
   sigmoid ([K]:819-863):   vector op = f(1 / f(1 + sleef_expf(-x)));  scalar op = f(1/(1.0 + double(glibc expf(-x))))
                            s_o = 1/256, zp_o = 0 (quint8)
QNNPACK lookup tables (qnnpack engine, quint8): x_i = f(s * float(i - zp)) for i = 0..255
   hardswish (hardswish.c:86-107): v = f(f(f(1/s_o) * f(f(x*min(max(f(x+3),0),6))/6)) + zp_o)
   hardsigmoid (hardsigmoid.c:104-124, s_o = 1/256, zp_o = 0): v = f(f(256 * f(min(max(f(x+3),0),6)/6)) + 0)
   sigmoid (sigmoid.c:90-103, s_o=1/256, zp_o=0): v = f(256 / f(1 + glibc_expf(-x)))
   then clamp v to [0,255] in float and lrintf (RNE): zero point added BEFORE rounding.
"""
import sys, os, warnings
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np
import torch
import torch.nn.functional as F
from emu_ops import (f32, f64, fma32, quantize_val, quantize_avx2, dequant_scalar, dequant_vec, vec_mask,
                     glibc_expf, sleef_expf_avx2, edge_u8, mk_q)

warnings.filterwarnings("ignore")
rng = np.random.default_rng(13)
S256 = 0.00390625


def hswish(x):
    m = np.minimum(np.maximum((x + f32(3)).astype(f32), f32(0)), f32(6))
    return ((x * m).astype(f32) / f32(6)).astype(f32)


def hsig(x):
    m = np.minimum(np.maximum((x + f32(3)).astype(f32), f32(0)), f32(6))
    return (m / f32(6)).astype(f32)


def sig_vec(x):
    e = sleef_expf_avx2((-x).astype(f32))
    return (f32(1) / (f32(1) + e).astype(f32)).astype(f32)


def sig_scalar(x):
    e = glibc_expf((-x).astype(f32)).astype(f64)
    return (1.0 / (1.0 + e)).astype(f32)      # double result, converted to float at quantize_val


def generic(mem, s, zp, s_o, zp_o, op_vec, op_sc, inv_v, nthreads):
    n = mem.size
    m = vec_mask(n, nthreads)
    out = np.empty(n, np.int64)
    if m.any():
        q = mem[m]
        out[m] = quantize_avx2(op_vec(dequant_vec(q, s, zp)), inv_v, zp_o)
    if (~m).any():
        q = mem[~m]
        out[~m] = quantize_val(op_sc(dequant_scalar(q, s, zp)), s_o, zp_o)
    return out


def lut(fn_v, s, zp):
    i = np.arange(256)
    x = (f32(s) * (i - zp).astype(f32)).astype(f32)
    v = fn_v(x)
    v = np.minimum(np.maximum(v, f32(0)), f32(255))
    return np.rint(v).astype(np.int64)


def qnn_hswish_v(s_o, zp_o):
    inv = f32(f32(1) / f32(s_o))
    return lambda x: ((inv * hswish(x)).astype(f32) + f32(zp_o)).astype(f32)


def qnn_hsig_v(x):
    return ((f32(256) * hsig(x)).astype(f32) + f32(0)).astype(f32)


def qnn_sig_v(x):
    return (f32(256) / (f32(1) + glibc_expf((-x).astype(f32))).astype(f32)).astype(f32)


def make_input(shape, cl):
    """returns (quantized tensor, memory-order flat uint8 array)"""
    if cl and len(shape) == 4:
        N, C, H, W = shape
        a = edge_u8(rng, (N, H, W, C))
        return a.transpose(0, 3, 1, 2), a.ravel()
    a = edge_u8(rng, shape)
    return a, a.ravel()


def mem_of(y, cl):
    t = y.int_repr()
    if cl and t.dim() == 4:
        t = t.permute(0, 2, 3, 1)
    return t.contiguous().numpy().ravel().astype(np.int64)


SHAPES = [(1, 1, 1, 1), (1, 3, 4, 5), (2, 8, 4, 4), (1, 33, 3, 3), (2, 16, 33, 33), (1, 64, 24, 24), (1, 7, 101, 101),
          (5, 13), (3, 37)]

allok = True
results = {}


def record(name, bad, tot):
    r = results.setdefault(name, [0, 0]); r[0] += bad; r[1] += tot


for nthreads in [1, 2]:
    torch.set_num_threads(nthreads)
    for engine in ["qnnpack", "onednn"]:
        torch.backends.quantized.engine = engine
        for shape in SHAPES:
            for cl in ([False, True] if len(shape) == 4 else [False]):
                for rep in range(2):
                    s = float(f32(10 ** rng.uniform(-2.5, -0.3))) if rep else float(f32(2.0 ** -int(rng.integers(2, 8))))
                    zp = int(rng.choice([0, 255, 1, 128, 127, int(rng.integers(0, 256))]))
                    arr, mem = make_input(shape, cl)
                    q = mk_q(arr, s, zp, channels_last=cl)
                    n = mem.size
                    qnn = engine == "qnnpack"
                    # relu, relu_
                    y = F.relu(q)
                    record("relu", int((mem_of(y, cl) != np.maximum(mem, zp)).sum()) + int(y.q_zero_point() != zp), n)
                    q2 = q.clone(); F.relu(q2, inplace=True)
                    record("relu_ (inplace)", int((mem_of(q2, cl) != np.maximum(mem, zp)).sum()), n)
                    # clamp family
                    for name, (lo_f, hi_f), call in [("relu6 (quantized::relu6)", (0.0, 6.0), lambda t: torch.ops.quantized.relu6(t, False)),
                                                     ("relu6 inplace", (0.0, 6.0), lambda t: torch.ops.quantized.relu6(t.clone().contiguous(memory_format=torch.channels_last) if cl else t.clone(), True)),
                                                     ("F.relu6", (0.0, 6.0), lambda t: F.relu6(t)),
                                                     ("hardtanh(-0.7,0.45)", (-0.7, 0.45), lambda t: F.hardtanh(t, -0.7, 0.45)),
                                                     ("clamp(-0.2,1.3)", (-0.2, 1.3), lambda t: torch.clamp(t, -0.2, 1.3))]:
                        y = call(q)
                        lo = int(quantize_val(np.array([lo_f], f32), s, zp)[0]); hi = int(quantize_val(np.array([hi_f], f32), s, zp)[0])
                        ref_mem = np.minimum(np.maximum(mem, lo), hi)
                        if qnn and cl and len(shape) == 4:
                            # QNNPACK clamp: memory-order result stored in an NCHW tensor
                            got = y.int_repr().contiguous().numpy().ravel().astype(np.int64)
                        else:
                            got = mem_of(y, cl)
                        record(name, int((got != ref_mem).sum()) + int(y.q_scale() != s or y.q_zero_point() != zp), n)
                    # hardswish with explicit output qparams
                    s_o = float(f32(s * rng.uniform(0.3, 1.2))); zp_o = int(rng.choice([0, 3, 128, int(rng.integers(0, 256))]))
                    y = torch.ops.quantized.hardswish(q, s_o, zp_o)
                    if qnn:
                        ref = lut(qnn_hswish_v(s_o, zp_o), s, zp)[mem]
                    else:
                        ref = generic(mem, s, zp, s_o, zp_o, hswish, hswish, f32(1.0 / f64(s_o)), nthreads)
                    record("hardswish", int((mem_of(y, cl) != ref).sum()) + int(y.q_scale() != s_o or y.q_zero_point() != zp_o), n)
                    # hardsigmoid
                    y = F.hardsigmoid(q)
                    if qnn:
                        ref = lut(qnn_hsig_v, s, zp)[mem]
                    else:
                        ref = generic(mem, s, zp, S256, 0, hsig, hsig, f32(1.0 / f64(f32(S256))), nthreads)
                    record("hardsigmoid", int((mem_of(y, cl) != ref).sum()) + int(y.q_scale() != S256 or y.q_zero_point() != 0), n)
                    # sigmoid
                    y = torch.sigmoid(q)
                    if qnn:
                        ref = lut(qnn_sig_v, s, zp)[mem]
                    else:
                        ref = generic(mem, s, zp, S256, 0, sig_vec, sig_scalar, f32(1.0 / S256), nthreads)
                    record("sigmoid", int((mem_of(y, cl) != ref).sum()) + int(y.q_scale() != S256 or y.q_zero_point() != 0), n)
        for name, (bad, tot) in sorted(results.items()):
            pass
    for name, (bad, tot) in sorted(results.items()):
        ok = bad == 0
        allok &= ok
        print("%s threads=%d %-26s (qnnpack+onednn, %d shapes, NCHW/NHWC): %d/%d mismatches" % (
            "PASS" if ok else "FAIL", nthreads, name, len(SHAPES), bad, tot))
    results.clear()

# how often do the vector and scalar generic paths disagree, and the generic vs the QNNPACK tables?
torch.set_num_threads(1)
dis = {}
for s in [0.01, 0.0235, 0.05, 0.1, 0.2]:
    for zp in [0, 64, 127, 128, 200]:
        i = np.arange(256)
        for name, fv, fs, so, zo, inv, qv in [("sigmoid", sig_vec, sig_scalar, S256, 0, f32(256), qnn_sig_v),
                                             ("hardsigmoid", hsig, hsig, S256, 0, f32(256), qnn_hsig_v),
                                             ("hardswish", hswish, hswish, s, zp, f32(1.0 / f64(f32(s))), qnn_hswish_v(s, zp))]:
            a = quantize_avx2(fv(dequant_vec(i, s, zp)), inv, zo)
            b = quantize_val(fs(dequant_scalar(i, s, zp)), so, zo)
            c = lut(qv, s, zp)
            d = dis.setdefault(name, [0, 0, 0]); d[0] += int((a != b).sum()); d[1] += int((b != c).sum()); d[2] += 256
for k, (ab, bc, n) in dis.items():
    print("   %-11s over %d (scale, zp, bin) triples: generic vector vs scalar lambda differ in %d, generic scalar vs QNNPACK table in %d" % (k, n, ab, bc))
print("%s %s: %s" % ("PASS" if allok else "FAIL", os.path.basename(__file__), "all checks above bit-exact (0 mismatches)" if allok else "see FAIL lines above"))
