"""quantized::cat / cat_relu, quantized::mul / mul_relu, quantized::add_scalar, quantized::mul_scalar,
torch.cat on quantized tensors, and quantized::add / add_relu (re-check of shared notes 6.5), both engines.

cat (quantized/cpu/TensorShape.cpp:51-112):
  NHWC fast path (dim == 1, every input 4-D channels-last; qcat_nhwc_kernel [K]:48-210), per pixel and input t:
    same (double) scale and zp as the output and no relu -> memcpy of the bins
    else channels c < 8*floor(C_t/8): dequant fma(s_t, q, f(s_t*-zp_t)) [relu: max(.,0)], RNE(f(x * f(1.0/double(s)))) + zp
         remaining channels: x = f(f(s_t)*float(q-zp_t)) [relu], quantize_val(s, zp, x)
  otherwise: xs = dequantize (scalar f(f(s_t)*float(q-zp_t))), at::cat, quantize_per_tensor(s, zp)
         (non-FBGEMM: scalar quantize_val loop); cat_relu: then max(q, zp)
  torch.cat(qxs) (cat_quantized_cpu l.135-147): uses the FIRST input's (scale, zp); the "all inputs share
    qparams" check is a no-op (|= bug), so differing inputs are silently requantized.
mul ([K]:1398-1448): m = f(f(f(s_a)*f(s_b)) * f(1/f(s)));  y = clamp(zp + RNE(f(float((a-za)*(b-zb)) * m)), 0, 255)
    relu: max(y, zp).  Same kernel on both engines (xnnpack only for qint8).
add_scalar(x, c) (BinaryOps.cpp:36-108): c_q = RNE(c / s) (double);
    0 <= z - c_q <= 255: bins copied, output (s, z - c_q)      [relu: max(q, z - c_q)]
    z - c_q < 0  : s' = (255 - (z - c_q))/255 * s, z' = 0   ; z - c_q > 255: s' = (z - c_q)/255 * s, z' = 255
    then y = clamp(z' + RNE(f(float((q - z) + c_q) * f(f(s)*f(1/f(s'))))), 0, 255)  [relu: max(y, z')]
mul_scalar(x, c) (qmul.cpp:127-182): c > 0: bins copied, (c*s, z) [relu: max(q,z)];  c == 0: bins 0, (1.0, 0);
    c < 0: q' = 255 - q, (|c|*s, 255 - z) [relu: max(q', 255 - z)]
add: shared notes 6.5 (qnnpack fixed point, round half away from zero; generic fma-dequant in 64-element blocks,
    scalar tails per thread chunk; mixed memory formats -> all scalar).
"""
import sys, os, struct, warnings
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np
import torch
from emu_ops import (f32, f64, quantize_val, quantize_avx2, dequant_scalar, dequant_vec, vec_mask, edge_u8, mk_q)

warnings.filterwarnings("ignore")
rng = np.random.default_rng(14)
allok = True


def report(name, bad, tot, extra=""):
    global allok
    ok = bad == 0
    allok &= ok
    print("%s %s: %d/%d mismatches%s" % ("PASS" if ok else "FAIL", name, bad, tot, extra))


def qparams():
    s = float(f32(10 ** rng.uniform(-2.5, -0.5))) if rng.random() < 0.7 else float(f32(2.0 ** -int(rng.integers(3, 8))))
    return s, int(rng.choice([0, 255, 1, 127, 128, int(rng.integers(0, 256))]))


# ------------------------------------------------------------------ cat
def cat_ref_generic(arrs, qps, dim, s, zp, relu):
    xs = [dequant_scalar(a, qs, qz) for a, (qs, qz) in zip(arrs, qps)]
    y = quantize_val(np.concatenate(xs, axis=dim), s, zp)
    return np.maximum(y, zp) if relu else y


def cat_ref_nhwc(arrs, qps, s, zp, relu):
    outs = []
    inv = f32(1.0 / f64(s))
    for a, (qs, qz) in zip(arrs, qps):
        C = a.shape[1]
        if qs == s and qz == zp and not relu:
            outs.append(a.astype(np.int64)); continue
        cv = C // 8 * 8
        o = np.empty(a.shape, np.int64)
        xv = dequant_vec(a[:, :cv], qs, qz)
        if relu:
            xv = np.maximum(xv, f32(0))
        o[:, :cv] = quantize_avx2(xv, inv, zp)
        xs = dequant_scalar(a[:, cv:], qs, qz)
        if relu:
            xs = np.maximum(xs, f32(0))
        o[:, cv:] = quantize_val(xs, s, zp)
        outs.append(o)
    return np.concatenate(outs, axis=1)


for engine in ["qnnpack", "onednn"]:
    torch.backends.quantized.engine = engine
    bad = tot = 0
    paths = {"nhwc": 0, "generic": 0}
    for trial in range(300):
        k = int(rng.integers(1, 4))
        N, H, W = int(rng.integers(1, 3)), int(rng.integers(1, 6)), int(rng.integers(1, 6))
        Cs = [int(rng.choice([1, 3, 8, 9, 16, 31, 32, 33, 40, 70])) for _ in range(k)]
        nhwc = trial % 2 == 1
        dim = 1 if (nhwc or rng.random() < 0.5) else int(rng.choice([0, 2, 3]))
        if dim != 1:
            Cs = [Cs[0]] * k
        arrs, qps, qts = [], [], []
        s, zp = qparams()
        for C in Cs:
            shape = [N, C, H, W]
            if dim != 1:
                shape[dim] = int(rng.integers(1, 5))
            a = edge_u8(rng, tuple(shape))
            qs, qz = (s, zp) if rng.random() < 0.25 else qparams()
            arrs.append(a); qps.append((qs, qz)); qts.append(mk_q(a, qs, qz, channels_last=nhwc))
        relu = bool(rng.random() < 0.3)
        op = torch.ops.quantized.cat_relu if relu else torch.ops.quantized.cat
        y = op(qts, scale=s, zero_point=zp, dim=dim)
        if nhwc and dim == 1:
            ref = cat_ref_nhwc(arrs, qps, s, zp, relu); paths["nhwc"] += 1
        else:
            ref = cat_ref_generic(arrs, qps, dim, s, zp, relu); paths["generic"] += 1
        yi = y.int_repr().numpy().astype(np.int64)
        bad += int((yi != ref).sum()) + int(y.q_scale() != s or y.q_zero_point() != zp); tot += ref.size
    report("%-8s quantized::cat / cat_relu, differing input qparams, %s" % (engine, paths), bad, tot)
    # torch.cat: first input's qparams
    bad = tot = 0
    for trial in range(50):
        a = edge_u8(rng, (2, 5, 3, 3)); b = edge_u8(rng, (2, 4, 3, 3))
        (sa, za), (sb, zb) = qparams(), qparams()
        y = torch.cat([mk_q(a, sa, za), mk_q(b, sb, zb)], 1)
        ref = cat_ref_generic([a, b], [(sa, za), (sb, zb)], 1, sa, za, False)
        bad += int((y.int_repr().numpy() != ref).sum()) + int(y.q_scale() != sa or y.q_zero_point() != za); tot += ref.size
    report("%-8s torch.cat on quantized tensors with different qparams -> requantized to input 0's qparams" % engine, bad, tot)

# ------------------------------------------------------------------ mul
for engine in ["qnnpack", "onednn"]:
    torch.backends.quantized.engine = engine
    for relu in [False, True]:
        bad = tot = 0
        for trial in range(200):
            shape = [(7,), (3, 65), (2, 8, 5, 5), (1, 33, 40, 40)][trial % 4]
            a = edge_u8(rng, shape); b = edge_u8(rng, shape)
            (sa, za), (sb, zb) = qparams(), qparams()
            s = float(f32(sa * sb * 255 * rng.uniform(0.05, 1.0))); zp = int(rng.integers(0, 256))
            if rng.random() < 0.3:      # power-of-two scales -> exact .5 ties
                sa, sb, s = 2.0 ** -3, 2.0 ** -4, 2.0 ** -6
            op = torch.ops.quantized.mul_relu if relu else torch.ops.quantized.mul
            y = op(mk_q(a, sa, za), mk_q(b, sb, zb), s, zp)
            m = f32(f32(f32(sa) * f32(sb)) * f32(f32(1) / f32(s)))
            c = (a.astype(np.int64) - za) * (b.astype(np.int64) - zb)
            ref = np.clip(zp + np.rint((c.astype(f32) * m).astype(f32)).astype(np.int64), 0, 255)
            if relu:
                ref = np.maximum(ref, zp)
            bad += int((y.int_repr().numpy() != ref).sum()); tot += ref.size
        report("%-8s quantized::mul%s" % (engine, "_relu" if relu else ""), bad, tot)

# ------------------------------------------------------------------ add_scalar / mul_scalar
for engine in ["qnnpack", "onednn"]:
    torch.backends.quantized.engine = engine
    for relu in [False, True]:
        bad = tot = qpb = 0
        for trial in range(400):
            a = edge_u8(rng, (3, int(rng.choice([5, 64, 100]))))
            s, z = qparams()
            c = float(rng.choice([rng.uniform(-300, 300) * s, rng.uniform(-3, 3) * s, (int(rng.integers(-5, 5)) + 0.5) * s]))
            op = torch.ops.quantized.add_scalar_relu if relu else torch.ops.quantized.add_scalar
            y = op(mk_q(a, s, z), c)
            c_q = int(np.rint(c / s))
            if 0 <= z - c_q <= 255:
                sp, zpn = s, z - c_q
                ref = a.astype(np.int64)
                if relu:
                    ref = np.maximum(ref, zpn)
            else:
                if z - c_q < 0:
                    sp, zpn = (255.0 - (z - c_q)) / 255.0 * s, 0
                else:
                    sp, zpn = (float(z - c_q) - 0) / 255.0 * s, 255
                m = f32(f32(s) * f32(f32(1) / f32(sp)))
                cc = (a.astype(np.int64) - z) + c_q
                ref = np.clip(zpn + np.rint((cc.astype(f32) * m).astype(f32)).astype(np.int64), 0, 255)
                if relu:
                    ref = np.maximum(ref, zpn)
            bad += int((y.int_repr().numpy() != ref).sum()); tot += ref.size
            qpb += int(y.q_scale() != sp or y.q_zero_point() != zpn)
        report("%-8s quantized::add_scalar%s (output qparams by the rule: %d mismatches)" % (engine, "_relu" if relu else "", qpb), bad + qpb, tot)
        bad = tot = qpb = 0
        for trial in range(300):
            a = edge_u8(rng, (2, int(rng.choice([5, 64, 100]))))
            s, z = qparams()
            c = float(rng.choice([rng.uniform(0.01, 5), -rng.uniform(0.01, 5), 0.0]))
            op = torch.ops.quantized.mul_scalar_relu if relu else torch.ops.quantized.mul_scalar
            y = op(mk_q(a, s, z), c)
            if c > 0:
                sp, zpn, ref = c * s, z, a.astype(np.int64)
            elif c == 0:
                sp, zpn, ref = 1.0, 0, np.zeros(a.shape, np.int64)
            else:
                sp, zpn, ref = abs(c) * s, 255 - z, 255 - a.astype(np.int64)
            if relu and c != 0:
                ref = np.maximum(ref, zpn)
            bad += int((y.int_repr().numpy() != ref).sum()); tot += ref.size
            qpb += int(y.q_scale() != sp or y.q_zero_point() != zpn)
        report("%-8s quantized::mul_scalar%s (output qparams by the rule: %d mismatches)" % (engine, "_relu" if relu else "", qpb), bad + qpb, tot)


# ------------------------------------------------------------------ add (re-check, incl. NHWC, threads, mixed formats)
def fl_exponent(x):
    return ((struct.unpack("<I", struct.pack("<f", float(x)))[0] >> 23) & 0xFF) - 127


def qnnpack_add(a, b, a_s, a_zp, b_s, b_zp, s, zp, relu):
    a_os = f32(f32(a_s) / f32(s)); b_os = f32(f32(b_s) / f32(s))
    shift = 21 - fl_exponent(max(a_os, b_os))
    am = int(np.rint(a_os * f32(2.0 ** shift))); bm = int(np.rint(b_os * f32(2.0 ** shift)))
    acc = a.astype(np.int64) * am + b.astype(np.int64) * bm - (am * a_zp + bm * b_zp)
    mask = (1 << shift) - 1
    q = (acc >> shift) + (((acc & mask) - (acc < 0)) > (mask >> 1))
    q = np.clip(q, -32768, 32767) + zp
    return np.clip(q, zp if relu else 0, 255)


def generic_add(a, b, a_s, a_zp, b_s, b_zp, s, zp, relu, mask):
    c = np.empty(a.size, f32)
    dv = (dequant_vec(a[mask], a_s, a_zp) + dequant_vec(b[mask], b_s, b_zp)).astype(f32)
    ds = (dequant_scalar(a[~mask], a_s, a_zp) + dequant_scalar(b[~mask], b_s, b_zp)).astype(f32)
    out = np.empty(a.size, np.int64)
    if relu:
        dv = np.maximum(dv, f32(0)); ds = np.maximum(ds, f32(0))
    out[mask] = quantize_avx2(dv, f32(f32(1) / f32(s)), zp)
    out[~mask] = quantize_val(ds, s, zp)
    return out


for nthreads in [1, 2]:
    torch.set_num_threads(nthreads)
    for engine in ["qnnpack", "onednn"]:
        torch.backends.quantized.engine = engine
        for relu in [False, True]:
            bad = tot = 0
            for trial in range(60):
                shape = [(1, 3, 5, 5), (2, 16, 9, 9), (1, 7, 101, 101), (1, 24, 56, 56), (3, 70)][trial % 5]
                fmt = ["nchw", "nhwc", "mixed"][trial % 3] if len(shape) == 4 else "nchw"
                (a_s, a_zp), (b_s, b_zp) = qparams(), qparams()
                s = float(f32((a_s + b_s) * rng.uniform(0.6, 1.5))); zp = int(rng.integers(0, 255))
                if len(shape) == 4:
                    N, C, H, W = shape
                    am = edge_u8(rng, (N, H, W, C)); bm = edge_u8(rng, (N, H, W, C))
                    qa = mk_q(am.transpose(0, 3, 1, 2), a_s, a_zp, channels_last=fmt != "nchw")
                    qb = mk_q(bm.transpose(0, 3, 1, 2), b_s, b_zp, channels_last=fmt == "nhwc")
                    if fmt == "nchw":   # memory order = NCHW
                        am = np.ascontiguousarray(am.transpose(0, 3, 1, 2)); bm = np.ascontiguousarray(bm.transpose(0, 3, 1, 2))
                else:
                    am = edge_u8(rng, shape); bm = edge_u8(rng, shape)
                    qa, qb = mk_q(am, a_s, a_zp), mk_q(bm, b_s, b_zp)
                op = torch.ops.quantized.add_relu if relu else torch.ops.quantized.add
                y = op(qa, qb, s, zp)
                a1, b1 = am.ravel().astype(np.int64), bm.ravel().astype(np.int64)
                if engine == "qnnpack":
                    ref = qnnpack_add(a1, b1, a_s, a_zp, b_s, b_zp, s, zp, relu)
                else:
                    mask = vec_mask(a1.size, nthreads) if fmt != "mixed" else np.zeros(a1.size, bool)
                    ref = generic_add(a1, b1, a_s, a_zp, b_s, b_zp, s, zp, relu, mask)
                t = y.int_repr()
                if len(shape) == 4 and fmt != "nchw":
                    t = t.permute(0, 2, 3, 1)
                bad += int((t.contiguous().numpy().ravel() != ref).sum()); tot += ref.size
            report("threads=%d %-8s quantized::add%s (NCHW, NHWC, mixed NHWC+NCHW, up to 75k elements)" %
                   (nthreads, engine, "_relu" if relu else ""), bad, tot)
# discriminating test for the vector/scalar split: inputs made only of (a, b) pairs on which the
# fma-dequant (vector) and the plain dequant (scalar) give different output bins
torch.backends.quantized.engine = "onednn"
for nthreads in [1, 2]:
    torch.set_num_threads(nthreads)
    tried = hit = 0
    bad = tot = alt_bad = 0
    while hit < 6 and tried < 200:
        tried += 1
        (a_s, a_zp), (b_s, b_zp) = qparams(), qparams()
        s = float(f32((a_s + b_s) * rng.uniform(0.3, 1.0))); zp = int(rng.integers(0, 255))
        A, B = np.meshgrid(np.arange(256), np.arange(256)); A = A.ravel(); B = B.ravel()
        allv = generic_add(A, B, a_s, a_zp, b_s, b_zp, s, zp, False, np.ones(A.size, bool))
        alls = generic_add(A, B, a_s, a_zp, b_s, b_zp, s, zp, False, np.zeros(A.size, bool))
        diff = np.nonzero(allv != alls)[0]
        if diff.size == 0:
            continue
        hit += 1
        n = 71407                                  # odd size: per-thread chunk tails differ from the 1-thread tail
        pick = diff[rng.integers(0, diff.size, n)]
        a1, b1 = A[pick], B[pick]
        y = torch.ops.quantized.add(mk_q(a1.astype(np.uint8), a_s, a_zp), mk_q(b1.astype(np.uint8), b_s, b_zp), s, zp)
        got = y.int_repr().numpy().astype(np.int64)
        ref = generic_add(a1, b1, a_s, a_zp, b_s, b_zp, s, zp, False, vec_mask(n, nthreads))
        alt = generic_add(a1, b1, a_s, a_zp, b_s, b_zp, s, zp, False, vec_mask(n, 3 - nthreads))
        bad += int((got != ref).sum()); alt_bad += int((got != alt).sum()); tot += n
    report("threads=%d onednn   quantized::add on fma-sensitive inputs (71407 elements): vector/scalar split by "
           "per-thread chunks" % nthreads, bad, tot, "; the split for %d thread(s) would mismatch %d" % (3 - nthreads, alt_bad))
torch.set_num_threads(1)
print("%s %s: %s" % ("PASS" if allok else "FAIL", os.path.basename(__file__), "all checks above bit-exact (0 mismatches)" if allok else "see FAIL lines above"))
