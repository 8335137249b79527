"""Shared numpy helpers for the ops-numerics-1.13.1 verification scripts.

float32 arithmetic: numpy float32 arrays (IEEE binary32, round to nearest even).
fma32(a, b, c): exactly rounded single-precision fused multiply-add (one rounding),
emulated with a double product (exact for two floats) + TwoSum + a midpoint fix-up.
"""
import ctypes
import numpy as np

f32 = np.float32
f64 = np.float64
GRAIN = 32768          # at::internal::GRAIN_SIZE (TensorIterator::for_each)


def fma32(a, b, c):
    a = np.asarray(a, f32); b = np.asarray(b, f32); c = np.asarray(c, f32)
    a, b, c = np.broadcast_arrays(a, b, c)
    p = a.astype(f64) * b.astype(f64)                   # exact
    cd = c.astype(f64)
    s = p + cd                                           # rounded to double
    bb = s - p
    err = (p - (s - bb)) + (cd - bb)                     # exact: p + c = s + err
    r = s.astype(f32)
    rd = r.astype(f64)
    # neighbour of r in the direction of s
    toward = np.where(s > rd, f32(np.inf), f32(-np.inf)).astype(f32)
    nb = np.nextafter(r, toward).astype(f32)
    mid = (rd + nb.astype(f64)) / 2
    tie = (s == mid) & (err != 0) & (s != rd)
    # a double value exactly at a float midpoint: the exact value lies beyond it
    # (err same sign as s - rd) -> neighbour, otherwise r
    beyond = np.sign(err) == np.sign(s - rd)
    r = np.where(tie & beyond, nb, np.where(tie, r, r))
    # s == rd exactly but err != 0 cannot change the float rounding (r is exact value +- tiny,
    # and |err| < half ulp(double) << half ulp(float)).
    return r.astype(f32)


def rne(x):
    return np.rint(x)


def quantize_val(x, scale, zp, qmin=0, qmax=255):
    """[Q]AffineQuantizerBase.cpp:127-143: inv = f(1/f(scale)); q = (int64)f(zp + RNE(f(x*inv)))."""
    inv = f32(f32(1.0) / f32(scale))
    x = np.asarray(x, f32)
    v = (np.rint((x * inv).astype(f32)).astype(f32) + f32(zp)).astype(f32)
    return np.clip(v.astype(np.int64), qmin, qmax)


def quantize_avx2(x, inv, zp, qmin=0, qmax=255):
    """vec256_qint.h:101-215 QuantizeAvx2: RNE(f(x*inv)) (int32) + zp, saturate."""
    x = np.asarray(x, f32)
    v = np.minimum((x * f32(inv)).astype(f32), f32(2147483520.0))
    return np.clip(np.rint(v).astype(np.int64) + zp, qmin, qmax)


def dequant_scalar(q, s, zp):
    """dequantize_val (non-FBGEMM): f(f(s) * float(q - zp))."""
    return (f32(s) * (np.asarray(q, np.int64) - zp).astype(f32)).astype(f32)


def dequant_vec(q, s, zp):
    """Vectorized<quint8>::dequantize: fma(s, float(q), f(s * -zp))."""
    s = f32(s)
    pre = f32(s * f32(-zp))
    return fma32(s, np.asarray(q, np.int64).astype(f32), pre)


def vec_mask(n, nthreads=1, block=64, grain=GRAIN):
    """Which flat indices (in iteration = memory order) cpu_kernel_vec processes with the
    vectorized lambda (True) vs the scalar lambda (False), for a 1-D contiguous iteration
    of n elements, `block` = 2*Vec::size() elements per vector step (64 for quint8 in/out).
    TensorIterator::for_each: serial if n < grain or 1 thread, else at::parallel_for
    (OpenMP): nt = min(T, ceil(n/grain)), chunk = ceil(n/nt); each chunk runs its own
    vector loop from its start and its own scalar tail."""
    m = np.zeros(n, bool)
    if n < grain or nthreads == 1:
        chunks = [(0, n)]
    else:
        nt = min(nthreads, -(-n // grain))
        ch = -(-n // nt)
        chunks = [(b, min(n, b + ch)) for b in range(0, n, ch)]
    for b, e in chunks:
        nv = (e - b) // block * block
        m[b:b + nv] = True
    return m


# glibc expf (the scalar std::exp(float) and QNNPACK's expf)
_libm = ctypes.CDLL("libm.so.6")
_libm.expf.restype = ctypes.c_float
_libm.expf.argtypes = [ctypes.c_float]


def glibc_expf(x):
    x = np.asarray(x, f32)
    out = np.empty(x.shape, f32)
    flat = x.ravel(); o = out.ravel()
    cache = {}
    for i, v in enumerate(flat):
        k = v.tobytes()
        if k not in cache:
            cache[k] = _libm.expf(float(v))
        o[i] = cache[k]
    return out


def sleef_expf_avx2(d):
    """Sleef 3.5.1 xexpf (src/libm/sleefsimdsp.c:1901-1923) as built for AVX2+FMA
    (vmla = _mm256_fmadd_ps, vrint = cvtps2dq)."""
    d = np.asarray(d, f32)
    R_LN2f = f32(1.442695040888963407359924681001892137426645954152985934135449406931)
    L2Uf = f32(0.693145751953125)
    L2Lf = f32(1.428606765330187045e-06)
    q = np.rint((d * R_LN2f).astype(f32)).astype(np.int64)
    qf = q.astype(f32)
    s = fma32(qf, -L2Uf, d)
    s = fma32(qf, -L2Lf, s)
    u = np.full(d.shape, f32(0.000198527617612853646278381), f32)
    for c in [0.00139304355252534151077271, 0.00833336077630519866943359,
              0.0416664853692054748535156, 0.166666671633720397949219, 0.5]:
        u = fma32(u, s, f32(c))
    u = (f32(1.0) + fma32((s * s).astype(f32), u, s)).astype(f32)
    q1 = q >> 1
    p1 = ((q1 + 0x7f) << 23).astype(np.uint32).view(f32)
    p2 = (((q - q1) + 0x7f) << 23).astype(np.uint32).view(f32)
    u = ((u * p1).astype(f32) * p2).astype(f32)
    u = np.where(d < f32(-104), f32(0), u)
    u = np.where(f32(100) < d, f32(np.inf), u)
    return u.astype(f32)


def mk_q(arr_u8, scale, zp, channels_last=False):
    import torch
    t = torch._make_per_tensor_quantized_tensor(torch.from_numpy(np.ascontiguousarray(arr_u8).astype(np.uint8)), scale, zp)
    if channels_last:
        t = t.contiguous(memory_format=torch.channels_last)
    return t


def edge_qparams(rng):
    """edge-biased (scale, zp) pairs: power-of-two scales, 1/255-like scales, random scales;
    zp at 0 / 255 / 128 / odd / random."""
    k = rng.integers(0, 4)
    if k == 0:
        s = float(f32(2.0 ** rng.integers(-10, 2)))
    elif k == 1:
        s = float(f32(rng.uniform(0.5, 8.0) / 255.0))
    else:
        s = float(f32(10 ** rng.uniform(-3.5, 0.5)))
    zp = int(rng.choice([0, 255, 128, 127, 1, 254, int(rng.integers(0, 256)), int(rng.integers(0, 256))]))
    return s, zp


def edge_u8(rng, shape):
    """uint8 data biased to 0, 255 and the zero point region."""
    x = rng.integers(0, 256, size=shape)
    r = rng.random(shape)
    x = np.where(r < 0.08, 0, x)
    x = np.where((r >= 0.08) & (r < 0.16), 255, x)
    return x.astype(np.uint8)
