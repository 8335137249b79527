"""QAT ConvBn2d / ConvBnReLU2d forward (torch/nn/intrinsic/qat/modules/conv_fused.py:98-126, 583-584)
replayed op by op (float32 numpy for the elementwise steps, F.conv2d as a black box for the conv,
deep copies of the module's own fake-quant modules for the two fake-quant steps) and compared bit
for bit with the module output, in eval mode (bn frozen / module.eval()) and train mode.

  running_std  = f(sqrt(f(running_var + f(eps))))
  scale_factor = f(bn.weight / running_std)
  w_scaled     = f(weight * scale_factor[:,None,None,None])
  w_fq         = weight_fake_quant(w_scaled)
  conv         = F.conv2d(x, w_fq, zeros(C_out), stride, padding, dilation, groups)
  conv_orig    = f(conv / scale_factor[None,:,None,None]) (+ f(. + bias) if conv bias)
  y            = bn(conv_orig)     (eval: running stats, eq. BN-inference; train: batch stats + update)
  ConvBnReLU2d: y = relu(y);  then activation_post_process (forward hook) fake-quantizes y.
"""
import sys, os, copy, warnings
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.ao.quantization as tq
from emu_ops import f32

warnings.filterwarnings("ignore")
rng = np.random.default_rng(17)
torch.manual_seed(17)

# BN emulations (same as 16_batchnorm.py)
from emu_ops import fma32, f64


def bn_infer(x, rm, rv, w, b, eps):
    invstd = (f32(1) / np.sqrt((rv + f32(eps)).astype(f32)).astype(f32)).astype(f32)
    alpha = (invstd * w).astype(f32)
    beta = fma32(-rm, alpha, b)
    return fma32(x, alpha.reshape(1, -1, 1, 1), beta.reshape(1, -1, 1, 1))


def bn_train(x, rm, rv, w, b, eps, momentum):
    C = x.shape[1]
    xc = np.moveaxis(x, 1, 0).reshape(C, -1)
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
    y = fma32(x, alpha.reshape(1, -1, 1, 1), beta.reshape(1, -1, 1, 1))
    return y, new_rm, new_rv


class M(nn.Module):
    def __init__(self, cin, cout, k, stride, pad, groups, bias, relu):
        super().__init__()
        self.quant = tq.QuantStub()
        self.conv = nn.Conv2d(cin, cout, k, stride, pad, groups=groups, bias=bias)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU() if relu else None
        self.dequant = tq.DeQuantStub()

    def forward(self, x):
        x = self.quant(x)
        x = self.bn(self.conv(x))
        if self.relu is not None:
            x = self.relu(x)
        return self.dequant(x)


def make_qat(engine, relu, bias, cfg):
    cin, cout, k, stride, pad, groups = cfg
    m = M(cin, cout, k, stride, pad, groups, bias, relu)
    with torch.no_grad():
        m.bn.running_mean.copy_(torch.randn(cout) * 0.3)
        m.bn.running_var.copy_(torch.rand(cout) * 2 + 0.05)
        m.bn.weight.copy_(torch.randn(cout))
        m.bn.bias.copy_(torch.randn(cout) * 0.2)
    m.eval()
    names = [["conv", "bn", "relu"]] if relu else [["conv", "bn"]]
    m = tq.fuse_modules_qat(m.train(), names) if hasattr(tq, "fuse_modules_qat") else tq.fuse_modules(m, names)
    m.qconfig = tq.get_default_qat_qconfig(engine)
    m.train()
    tq.prepare_qat(m, inplace=True)
    return m


def replay(mod, x, train):
    """emulate mod (nniqat.ConvBn2d / ConvBnReLU2d) forward on float input x."""
    wfq = copy.deepcopy(mod.weight_fake_quant)
    apf = copy.deepcopy(mod.activation_post_process)
    bn = mod.bn
    rv = bn.running_var.detach().numpy().copy(); rm = bn.running_mean.detach().numpy().copy()
    gw = bn.weight.detach().numpy(); gb = bn.bias.detach().numpy()
    W = mod.weight.detach().numpy()
    running_std = np.sqrt((rv + f32(bn.eps)).astype(f32)).astype(f32)
    sf = (gw / running_std).astype(f32)
    w_scaled = (W * sf.reshape(-1, 1, 1, 1)).astype(f32)
    with torch.no_grad():
        w_fq = wfq(torch.from_numpy(w_scaled))
        conv = F.conv2d(torch.from_numpy(x), w_fq, torch.zeros(mod.out_channels), mod.stride, mod.padding,
                        mod.dilation, mod.groups).numpy()
    co = (conv / sf.reshape(1, -1, 1, 1)).astype(f32)
    if mod.bias is not None:
        co = (co + mod.bias.detach().numpy().reshape(1, -1, 1, 1)).astype(f32)
    if train:
        y, nrm, nrv = bn_train(co, rm, rv, gw, gb, bn.eps, bn.momentum)
    else:
        y = bn_infer(co, rm, rv, gw, gb, bn.eps); nrm, nrv = rm, rv
    if isinstance(mod, torch.nn.intrinsic.qat.ConvBnReLU2d):
        y = np.maximum(y, f32(0))
    with torch.no_grad():
        out = apf(torch.from_numpy(y)).numpy()
    return out, y, nrm, nrv


allok = True
cfgs = [(3, 8, 3, 1, 1, 1), (8, 8, 3, 2, 1, 8), (4, 6, 1, 1, 0, 1), (6, 4, 3, 1, 0, 2)]
for engine in ["qnnpack", "onednn"]:
    for relu in [False, True]:
        for bias in [False, True]:
            bad = tot = 0
            badstat = 0
            for cfg in cfgs:
                m = make_qat(engine, relu, bias, cfg)
                # a few training steps so observers / running stats are non-trivial
                for _ in range(3):
                    m(torch.randn(2, cfg[0], 9, 9) * 2)
                mod = m.conv
                for mode in ["train", "eval"]:
                    if mode == "eval":
                        m.eval()
                    else:
                        m.train()
                    for t in range(3):
                        x = (rng.standard_normal((2, cfg[0], 9, 9)) * 2).astype(f32)
                        # feed the fused module directly (input already fake-quantized by QuantStub in a model)
                        xq = m.quant.activation_post_process(torch.from_numpy(x)).detach() if mode == "eval" else \
                            copy.deepcopy(m.quant.activation_post_process)(torch.from_numpy(x)).detach()
                        ref, yref, nrm, nrv = replay(mod, xq.numpy(), mode == "train")
                        # pre-fake-quant float output: run a copy with the output fake-quant removed
                        mc = copy.deepcopy(mod)
                        mc.activation_post_process = nn.Identity()
                        with torch.no_grad():
                            ypre = mc(xq).numpy()
                            out = mod(xq).numpy()
                        bad += int((out.view(np.int32) != ref.view(np.int32)).sum()); tot += out.size
                        bad += int((ypre.view(np.int32) != yref.view(np.int32)).sum()); tot += out.size
                        badstat += int((mod.bn.running_mean.detach().numpy().view(np.int32) != nrm.view(np.int32)).sum())
                        badstat += int((mod.bn.running_var.detach().numpy().view(np.int32) != nrv.view(np.int32)).sum())
            ok = bad == 0 and badstat == 0
            allok &= ok
            print("%s %-8s ConvBn%s2d bias=%d: output (before and after the output fake-quant) %d/%d float mismatches, running-stat mismatches %d (train+eval modes)" %
                  ("PASS" if ok else "FAIL", engine, "ReLU" if relu else "", bias, bad, tot, badstat))
print("%s %s: %s" % ("PASS" if allok else "FAIL", os.path.basename(__file__), "all checks above bit-exact (0 mismatches)" if allok else "see FAIL lines above"))
