"""aten::batch_norm CPU float32 forward, inference and training, vs numpy emulation.

Inference (batch_norm_cpu_collect_linear_and_constant_terms<float,float>, batch_norm_kernel.cpp:29-68,
contiguous/channels-last impls l.72-167; AVX2 build => GCC contracts to FMA):
  invstd = f(1 / f(sqrt(f(var + f(eps)))))         (float)
  alpha  = f(invstd * w)
  beta   = fma(-mean, alpha, b)                     (one rounding: b - mean*alpha)
  y      = fma(x, alpha, beta)                      (one rounding)
Training (batch_norm_cpu_update_stats_template Normalization.cpp:152-198 + collect_stats l.169-211):
  mean    = f( (sum_double x) / N )
  var_sum = f( sum_double f(f(x-mean)^2) )
  invstd  = f( 1 / sqrt(double(f(var_sum / f(N))) + eps) )     (double)
  running_mean = f(f(m*mean) + f(f(1-m)*rm))                    m = f(momentum)
  running_var  = f( double(m)*double(f(var_sum / f(N-1))) + double(f(f(1-m)*rv)) )
  y: as inference with (mean, invstd) = batch stats.
"""
import sys, os, warnings
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np
import torch
import torch.nn.functional as F
from emu_ops import f32, f64, fma32

warnings.filterwarnings("ignore")
rng = np.random.default_rng(16)


def bn_infer(x, rm, rv, w, b, eps, cdim=1):
    invstd = (f32(1) / np.sqrt((rv + f32(eps)).astype(f32)).astype(f32)).astype(f32)
    alpha = (invstd * w).astype(f32) if w is not None else invstd
    bb = b if b is not None else np.zeros_like(rm)
    beta = fma32(-rm, alpha, bb)
    shp = [1] * x.ndim; shp[cdim] = -1
    return fma32(x, alpha.reshape(shp), beta.reshape(shp))


def bn_train(x, rm, rv, w, b, eps, momentum):
    C = x.shape[1]
    xc = np.moveaxis(x, 1, 0).reshape(C, -1)           # n-major, then spatial: same order as the kernel
    N = xc.shape[1]
    mean = np.array([f32(xc[c].astype(f64).sum() / N) for c in range(C)], f32)
    var_sum = np.array([f32(((xc[c] - mean[c]).astype(f32) ** 2).astype(f32).astype(f64).sum()) for c in range(C)], f32)
    invstd = np.array([f32(1.0 / np.sqrt(f64(f32(var_sum[c] / f32(N))) + eps)) for c in range(C)], f32)
    m = f32(momentum)
    new_rm = ((m * mean).astype(f32) + ((f32(1) - m) * rm).astype(f32)).astype(f32)
    unb = (var_sum / f32(N - 1)).astype(f32).astype(f64)
    new_rv = (f64(m) * unb + ((f32(1) - m) * rv).astype(f32).astype(f64)).astype(f32)
    alpha = (invstd * w).astype(f32)
    beta = fma32(-mean, alpha, b)
    shp = [1] * x.ndim; shp[1] = -1
    y = fma32(x, alpha.reshape(shp), beta.reshape(shp))
    return y, new_rm, new_rv


def bits_diff(a, b):
    a = np.asarray(a, f32); b = np.asarray(b, f32)
    return int((a.view(np.int32) != b.view(np.int32)).sum())


def rand_stats(C):
    rm = (rng.standard_normal(C) * 2).astype(f32)
    rv = (10 ** rng.uniform(-6, 2, C)).astype(f32)
    rv[rng.random(C) < 0.1] = f32(0)
    w = (rng.standard_normal(C)).astype(f32)
    b = (rng.standard_normal(C)).astype(f32)
    return rm, rv, w, b


allok = True
tot = {}
# ---------------- inference ----------------
for trial in range(400):
    N = int(rng.integers(1, 4)); C = int(rng.integers(1, 20))
    H = int(rng.integers(1, 9)); W = int(rng.integers(1, 13))
    kind = trial % 4           # 0 NCHW, 1 channels-last, 2 NC (BatchNorm1d), 3 NC11
    eps = float(rng.choice([1e-5, 1e-3, 0.0, 1e-5]))
    x = (rng.standard_normal((N, C, H, W)) * 10 ** rng.uniform(-2, 2)).astype(f32)
    if kind == 2:
        x = x[:, :, 0, 0].copy()
    if kind == 3:
        x = x[:, :, :1, :1].copy()
    rm, rv, w, b = rand_stats(C)
    xt = torch.from_numpy(x)
    if kind == 1:
        xt = xt.contiguous(memory_format=torch.channels_last)
    y = F.batch_norm(xt, torch.from_numpy(rm), torch.from_numpy(rv), torch.from_numpy(w), torch.from_numpy(b),
                     False, 0.1, eps).contiguous().numpy()
    ref = bn_infer(x, rm, rv, w, b, eps)
    d = bits_diff(y, ref)
    tot.setdefault("infer", [0, 0])
    tot["infer"][0] += d; tot["infer"][1] += y.size
    # alternative without FMA (for the report)
    invstd = (f32(1) / np.sqrt((rv + f32(eps)).astype(f32))).astype(f32)
    alpha = (invstd * w).astype(f32); beta = (b - (rm * alpha).astype(f32)).astype(f32)
    shp = [1] * x.ndim; shp[1] = -1
    alt = ((x * alpha.reshape(shp)).astype(f32) + beta.reshape(shp)).astype(f32)
    tot.setdefault("nofma", [0, 0])
    tot["nofma"][0] += bits_diff(y, alt); tot["nofma"][1] += y.size
    # nn.BatchNorm2d module in eval mode (same kernel)
bad, n = tot["infer"]
print("%s inference F.batch_norm (NCHW, channels-last, NC, NC11): %d/%d float bit mismatches; "
      "a no-FMA emulation would mismatch %d" % ("PASS" if bad == 0 else "FAIL", bad, n, tot["nofma"][0]))
allok &= bad == 0

# ---------------- training (contiguous NCHW, image_size > 1) ----------------
bad_y = bad_rm = bad_rv = n_y = n_c = 0
for trial in range(150):
    N = int(rng.integers(1, 5)); C = int(rng.integers(1, 12))
    H = int(rng.integers(2, 9)); W = int(rng.integers(1, 11))
    x = (rng.standard_normal((N, C, H, W)) * 10 ** rng.uniform(-2, 2) + rng.standard_normal((1, C, 1, 1))).astype(f32)
    rm, rv, w, b = rand_stats(C)
    rv = np.abs(rv) + f32(0.1)
    eps = 1e-5
    rmt = torch.from_numpy(rm.copy()); rvt = torch.from_numpy(rv.copy())
    y = F.batch_norm(torch.from_numpy(x), rmt, rvt, torch.from_numpy(w), torch.from_numpy(b), True, 0.1, eps).numpy()
    ry, rrm, rrv = bn_train(x, rm, rv, w, b, eps, 0.1)
    bad_y += bits_diff(y, ry); bad_rm += bits_diff(rmt.numpy(), rrm); bad_rv += bits_diff(rvt.numpy(), rrv)
    n_y += y.size; n_c += C
ok = bad_y == 0 and bad_rm == 0 and bad_rv == 0
allok &= ok
print("%s training F.batch_norm NCHW: output %d/%d, running_mean %d/%d, running_var %d/%d mismatches" %
      ("PASS" if ok else "FAIL", bad_y, n_y, bad_rm, n_c, bad_rv, n_c))
print("%s %s: %s" % ("PASS" if allok else "FAIL", os.path.basename(__file__), "all checks above bit-exact (0 mismatches)" if allok else "see FAIL lines above"))
