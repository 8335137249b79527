"""convert() of QAT ConvBn2d / ConvBnReLU2d: BN folding (torch/nn/utils/fusion.py:16-33, called from
ao/nn/quantized/modules/conv.py:219-226 and nn/intrinsic/quantized/modules/conv_relu.py:99-104), then
get_qconv (conv.py:196-216): weight_fake_quant(w_fold) runs once more, _quantize_weight with the observer's
Python calculate_qparams, the folded float bias, output qparams from activation_post_process.

  rsqrt  = f(1 / f(sqrt(f(running_var + f(eps)))))               torch.rsqrt: div(1, sqrt)
  w_fold = f(W * f(bn_w * rsqrt)[:,None,None,None])
  b_fold = f( f( f( f(b_conv - running_mean) * rsqrt) * bn_w) + bn_b )     b_conv = 0 if None
  observer (if enabled): min/max <- moving average (c = 0.01) of aminmax(w_fold) (per channel for onednn)
  (s, zp) = observer._calculate_qparams(min, max)  [symmetric qint8: s = max(f(M / 127.5), eps), zp 0]
  qW     = clamp(f(zp + RNE(f(w_fold * f(1/f(s))))), -128, 127)      (per channel: f(s_c))
Checked: the converted module's int8 weight, its per-tensor/per-channel scales and zero points, the
float bias (bit for bit), and output scale/zero point; with the weight observer enabled and disabled.
"""
import sys, os, copy, warnings
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np
import torch
import torch.nn as nn
import torch.ao.quantization as tq
from emu_ops import f32

warnings.filterwarnings("ignore")
rng = np.random.default_rng(18)
torch.manual_seed(18)
EPS32 = f32(np.finfo(np.float32).eps)


def calc_qparams_sym(mn, mx, qmin=-128, qmax=127):
    """observer.py:321-335 (qint8, per_tensor/per_channel_symmetric), float32 tensor math."""
    mn = np.minimum(np.asarray(mn, f32), f32(0)); mx = np.maximum(np.asarray(mx, f32), f32(0))
    M = np.maximum(-mn, mx).astype(f32)
    s = (M / f32((qmax - qmin) / 2)).astype(f32)
    return np.maximum(s, EPS32), np.zeros(s.shape, np.int64)


def mavg(old, cur, c=f32(0.01)):
    old = np.asarray(old, f32); cur = np.asarray(cur, f32)
    upd = (old + (c * (cur - old).astype(f32)).astype(f32)).astype(f32)
    return np.where(np.isinf(old), cur, upd)


class M(nn.Module):
    def __init__(self, cin, cout, k, stride, pad, groups, bias, relu):
        super().__init__()
        self.quant = tq.QuantStub()
        self.conv = nn.Conv2d(cin, cout, k, stride, pad, groups=groups, bias=bias)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU() if relu else None
        self.dequant = tq.DeQuantStub()

    def forward(self, x):
        x = self.bn(self.conv(self.quant(x)))
        if self.relu is not None:
            x = self.relu(x)
        return self.dequant(x)


allok = True
cfgs = [(3, 8, 3, 1, 1, 1), (8, 8, 3, 2, 1, 8), (4, 6, 1, 1, 0, 1), (6, 4, 3, 1, 0, 2), (16, 32, 3, 1, 1, 1)]
for engine in ["qnnpack", "onednn"]:
    torch.backends.quantized.engine = engine
    stats = dict(w=0, wn=0, s=0, b=0, bn=0, o=0, cases=0)
    for relu in [False, True]:
        for bias in [False, True]:
            for obs_on in [True, False]:
                for cfg in cfgs:
                    cin, cout, k, stride, pad, groups = cfg
                    m = M(cin, cout, k, stride, pad, groups, bias, relu)
                    with torch.no_grad():
                        m.bn.running_mean.copy_(torch.randn(cout) * 0.3)
                        m.bn.running_var.copy_(torch.rand(cout) * 2 + 1e-3)
                        m.bn.weight.copy_(torch.randn(cout))
                        m.bn.bias.copy_(torch.randn(cout) * 0.2)
                    m.train()
                    m = tq.fuse_modules_qat(m, [["conv", "bn", "relu"]] if relu else [["conv", "bn"]])
                    m.qconfig = tq.get_default_qat_qconfig(engine)
                    tq.prepare_qat(m, inplace=True)
                    opt = torch.optim.SGD(m.parameters(), lr=0.05)
                    for _ in range(4):          # a few real QAT steps: weights, bn stats, observers all move
                        opt.zero_grad()
                        m(torch.randn(4, cin, 8, 8)).square().mean().backward()
                        opt.step()
                    if not obs_on:
                        m.apply(tq.disable_observer)
                    m.eval()
                    mod = m.conv
                    # ---- emulate from the pre-convert state ----
                    W = mod.weight.detach().numpy().copy()
                    cb = mod.bias.detach().numpy().copy() if mod.bias is not None else np.zeros(cout, f32)
                    rm = mod.bn.running_mean.numpy().copy(); rv = mod.bn.running_var.numpy().copy()
                    gw = mod.bn.weight.detach().numpy().copy(); gb = mod.bn.bias.detach().numpy().copy()
                    eps = mod.bn.eps
                    obs = mod.weight_fake_quant.activation_post_process
                    mn = obs.min_val.numpy().copy(); mx = obs.max_val.numpy().copy()
                    act_s, act_zp = mod.activation_post_process.calculate_qparams()
                    rs = (f32(1) / np.sqrt((rv + f32(eps)).astype(f32)).astype(f32)).astype(f32)
                    wf = (W * (gw * rs).astype(f32).reshape(-1, 1, 1, 1)).astype(f32)
                    bf = ((((cb - rm).astype(f32) * rs).astype(f32) * gw).astype(f32) + gb).astype(f32)
                    per_channel = engine == "onednn"
                    if per_channel:
                        cmn = wf.reshape(cout, -1).min(1); cmx = wf.reshape(cout, -1).max(1)
                    else:
                        cmn = wf.min(); cmx = wf.max()
                    if obs_on:
                        mn = mavg(mn, cmn); mx = mavg(mx, cmx)
                    s, zp = calc_qparams_sym(mn, mx)
                    s_b = np.broadcast_to(s, (cout,)).reshape(-1, 1, 1, 1)
                    inv = (f32(1) / s_b.astype(f32)).astype(f32)
                    qw = np.clip((np.rint((wf * inv).astype(f32)).astype(f32) + f32(0)).astype(np.int64), -128, 127)
                    # ---- real convert ----
                    qm = tq.convert(copy.deepcopy(m))
                    qc = qm.conv
                    w_real = qc.weight()
                    stats["cases"] += 1
                    stats["w"] += int((w_real.int_repr().numpy().astype(np.int64) != qw).sum()); stats["wn"] += qw.size
                    if per_channel:
                        rs_ = w_real.q_per_channel_scales().numpy()
                        stats["s"] += int((rs_.astype(f32).view(np.int32) != s.view(np.int32)).sum())
                        stats["s"] += int((rs_.astype(f32).astype(np.float64) != rs_).sum())   # scales are float32 values
                    else:
                        stats["s"] += int(f32(w_real.q_scale()).view(np.int32) != f32(s).view(np.int32))
                    b_real = qc.bias().detach().numpy()
                    stats["b"] += int((b_real.view(np.int32) != bf.view(np.int32)).sum()); stats["bn"] += cout
                    stats["o"] += int(qc.scale != float(act_s) or qc.zero_point != int(act_zp))
    ok = stats["w"] == 0 and stats["s"] == 0 and stats["b"] == 0 and stats["o"] == 0
    allok &= ok
    print("%s %-8s convert ConvBn(ReLU)2d, %d modules (bias y/n, relu y/n, weight observer on/off): "
          "int8 weight %d/%d, weight scales %d, folded bias %d/%d, output qparams %d mismatches" %
          ("PASS" if ok else "FAIL", engine, stats["cases"], stats["w"], stats["wn"], stats["s"], stats["b"], stats["bn"], stats["o"]))

# the fold uses w*rsqrt (two roundings) while QAT used w/sqrt: how often do they differ?
rv = (10 ** rng.uniform(-3, 1, 100000)).astype(f32); gw = rng.standard_normal(100000).astype(f32)
a = (gw / np.sqrt((rv + f32(1e-5)).astype(f32)).astype(f32)).astype(f32)
b = (gw * (f32(1) / np.sqrt((rv + f32(1e-5)).astype(f32)).astype(f32)).astype(f32)).astype(f32)
print("   note: QAT scale_factor f(w/sqrt) vs convert f(w*f(1/sqrt)) differ in %.1f%% of random channels" %
      (100.0 * (a != b).mean()))
print("%s %s: %s" % ("PASS" if allok else "FAIL", os.path.basename(__file__), "all checks above bit-exact (0 mismatches)" if allok else "see FAIL lines above"))
