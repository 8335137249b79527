"""Eager prepare_qat / convert of activation modules (1.13.1):
which modules get an output fake-quant during QAT, what convert turns them into, which output qparams
the int8 op uses, and whether the int8 output bins equal the QAT fake-quant bins.

prepare (ao/quantization/quantize.py:135-219): every module gets a qconfig (propagate_qconfig_); a leaf gets
  an activation_post_process + forward hook if (a) it is in DEFAULT_MODULE_TO_ACT_POST_PROCESS and
  module.training (nn.Hardsigmoid, nn.Sigmoid, nn.Softmax -> FixedQParamsFakeQuantize(1/256, 0);
  nn.Tanh -> (2/256, 128); quantization_mappings.py:162-167, 308-318), else (b) its type is in the
  propagation list = keys of the static/QAT/dynamic module mappings (nn.ReLU6, nn.Hardswish, nn.ELU,
  nn.LeakyReLU, nn.Dropout(skipped), ... ) -> qconfig.activation(). nn.ReLU, nn.Identity, functional
  calls get nothing.
convert: nn.Hardswish -> nnq.Hardswish(scale, zp = activation_post_process.calculate_qparams());
  nn.ReLU6 -> nnq.ReLU6 (quantized::relu6: output keeps the INPUT qparams, the trained observer is dropped);
  nn.Sigmoid / nn.Hardsigmoid / nn.Tanh are not swapped: the float module runs on the quantized tensor
  (aten quantized kernels with fixed output qparams 1/256,0 / 1/256,0 / 2/256,128); observers and hooks
  are removed by _remove_qconfig.
"""
import sys, os, copy, warnings
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np
import torch
import torch.nn as nn
import torch.ao.quantization as tq
import torch.ao.nn.quantized as nnq

warnings.filterwarnings("ignore")
torch.manual_seed(19)
allok = True


class M(nn.Module):
    def __init__(self, act):
        super().__init__()
        self.quant = tq.QuantStub()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.act = act
        self.dequant = tq.DeQuantStub()

    def forward(self, x):
        return self.dequant(self.act(self.conv(self.quant(x))))


expect = {
    # act: (post-process class name in QAT, fixed (scale, zp) or None, converted type, int8 output qparams rule)
    "Hardswish": ("FusedMovingAvgObsFakeQuantize", None, "QuantizedHardswish", "observer"),
    "ReLU6": ("FusedMovingAvgObsFakeQuantize", None, "QuantizedReLU6", "input"),
    "Sigmoid": ("FixedQParamsFakeQuantize", (1 / 256, 0), "Sigmoid", (1 / 256, 0)),
    "Hardsigmoid": ("FixedQParamsFakeQuantize", (1 / 256, 0), "Hardsigmoid", (1 / 256, 0)),
    "Tanh": ("FixedQParamsFakeQuantize", (2 / 256, 128), "Tanh", (2 / 256, 128)),
    "ReLU": (None, None, "ReLU", "input"),
}
for engine in ["qnnpack", "onednn"]:
    torch.backends.quantized.engine = engine
    for name, (pp, fixed, conv_type, rule) in expect.items():
        m = M(getattr(nn, name)())
        m.train()
        m.qconfig = tq.get_default_qat_qconfig(engine)
        tq.prepare_qat(m, inplace=True)
        app = getattr(m.act, "activation_post_process", None)
        got_pp = type(app).__name__ if app is not None else None
        ok_pp = got_pp == pp
        if fixed is not None and app is not None:
            ok_pp &= abs(float(app.scale) - fixed[0]) < 1e-12 and int(app.zero_point) == fixed[1]
        with torch.no_grad():
            for _ in range(5):             # train-mode forwards: observers / fake-quants see data
                m(torch.randn(4, 3, 8, 8) * 2)
        m.eval()
        x = torch.randn(2, 3, 8, 8) * 2
        with torch.no_grad():
            # QAT output of the activation module (after its fake-quant, if any), on the QAT conv output
            conv_fq = m.conv(m.quant(x))
            act_qat = m.act(conv_fq)
        obs_qparams = app.calculate_qparams() if app is not None else None
        qm = tq.convert(copy.deepcopy(m))
        ok_type = qm.act._get_name() == conv_type
        ok_clean = not hasattr(qm.act, "activation_post_process") and len(qm.act._forward_hooks) == 0
        with torch.no_grad():
            qin = qm.conv(qm.quant(x))
            qout = qm.act(qin)
        if rule == "observer":
            exp_qp = (float(obs_qparams[0]), int(obs_qparams[1]))
        elif rule == "input":
            exp_qp = (qin.q_scale(), qin.q_zero_point())
        else:
            exp_qp = rule
        ok_qp = abs(qout.q_scale() - exp_qp[0]) < 1e-12 and qout.q_zero_point() == exp_qp[1]
        # agreement of int8 output with the QAT fake-quant output (same input x): fraction of differing values
        diff = (qout.dequantize() - act_qat).abs()
        frac = float((diff > 1e-6).float().mean())
        qat_note = ""
        if name == "ReLU6":
            qat_note = " QAT fake-quant (%.5g, %d) vs int8 output qparams (%.5g, %d)" % (
                float(obs_qparams[0]), int(obs_qparams[1]), qout.q_scale(), qout.q_zero_point())
        ok_bins = True
        if name == "ReLU6":
            # int8 relu6 = clamp of the conv-output bins to [q(0), q(6)] in the conv output's qparams; on
            # qnnpack the conv output is channels-last and qnnpack_clamp returns the memory-order result in
            # an NCHW tensor (layout bug, 13_activations.py)
            s_, z_ = qin.q_scale(), qin.q_zero_point()
            lo = int(min(max(z_ + round(0.0 / s_), 0), 255)); inv = np.float32(1) / np.float32(s_)
            hi = int(min(max(np.float32(z_) + np.rint(np.float32(6.0) * inv), 0), 255))
            qi = qin.int_repr()
            cl = qin.is_contiguous(memory_format=torch.channels_last) and not qin.is_contiguous()
            if engine == "qnnpack" and cl:
                mem = qi.permute(0, 2, 3, 1).contiguous().numpy().ravel()
                ref = np.clip(mem, lo, hi).reshape(qi.shape)
            else:
                ref = np.clip(qi.numpy(), lo, hi)
            ok_bins = bool((qout.int_repr().numpy() == ref).all())
            qat_note += "; int8 bins match clamp%s: %s" % (" + NHWC->NCHW reinterpretation" if engine == "qnnpack" else "", ok_bins)
        ok = ok_pp and ok_type and ok_qp and ok_clean and ok_bins
        allok &= ok
        print("%s %-8s nn.%-11s QAT post-process: %-30s -> convert: %-19s output qparams rule '%s'; "
              "int8 vs QAT values differ in %.0f%%.%s" % ("PASS" if ok else "FAIL", engine, name, got_pp, qm.act._get_name(),
                                                        rule if isinstance(rule, str) else "fixed %s" % (rule,), 100 * frac, qat_note))
# pooling / shape modules: no output fake-quant in QAT (not in any mapping); they stay float modules after
# convert and run the quantized kernels with the input's qparams
for name, mod in [("MaxPool2d", nn.MaxPool2d(2)), ("AvgPool2d", nn.AvgPool2d(2)), ("AdaptiveAvgPool2d", nn.AdaptiveAvgPool2d(1)),
                  ("Flatten", nn.Flatten()), ("Dropout", nn.Dropout()), ("Identity", nn.Identity())]:
    m = M(mod); m.train(); m.qconfig = tq.get_default_qat_qconfig("qnnpack")
    tq.prepare_qat(m, inplace=True)
    has = hasattr(m.act, "activation_post_process")
    qm = tq.convert(copy.deepcopy(m.eval()))
    ok = not has
    allok &= ok
    print("%s          nn.%-17s QAT post-process: %s -> convert: %s" % ("PASS" if ok else "FAIL", name,
          type(m.act.activation_post_process).__name__ if has else "None", type(qm.act).__name__))
print("%s %s: %s" % ("PASS" if allok else "FAIL", os.path.basename(__file__), "all checks above bit-exact (0 mismatches)" if allok else "see FAIL lines above"))
