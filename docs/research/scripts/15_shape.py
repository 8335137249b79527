"""flatten / reshape / view / permute+contiguous / squeeze / dropout on quantized tensors: identity on the
bins (in logical order) and the input's qparams, whatever the memory format; nnq.Dropout.forward returns its
input (ao/nn/quantized/modules/dropout.py:15-16); F.dropout(training=False) returns the input; eager prepare
skips nn.Dropout (quantize.py:190-191) and convert swaps it for nnq.Dropout (quantization_mappings.py:56).
"""
import sys, os, warnings
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np
import torch
import torch.nn.functional as F
import torch.ao.nn.quantized as nnq
from emu_ops import edge_u8, mk_q

warnings.filterwarnings("ignore")
rng = np.random.default_rng(15)
allok = True
for engine in ["qnnpack", "onednn"]:
    torch.backends.quantized.engine = engine
    bad = qpb = cases = 0
    for trial in range(60):
        N, C, H, W = int(rng.integers(1, 4)), int(rng.integers(1, 20)), int(rng.integers(1, 8)), int(rng.integers(1, 8))
        x = edge_u8(rng, (N, C, H, W)); s, zp = float(np.float32(rng.uniform(0.001, 0.5))), int(rng.integers(0, 256))
        cl = bool(trial % 2)
        q = mk_q(x, s, zp, channels_last=cl)
        xi = x.astype(np.int64)
        outs = [
            (torch.flatten(q, 1), xi.reshape(N, -1)),
            (q.reshape(N, -1), xi.reshape(N, -1)),
            (q.reshape(-1), xi.reshape(-1)),
            (q.permute(0, 2, 3, 1).contiguous(), xi.transpose(0, 2, 3, 1)),
            (q.contiguous(), xi),
            (q.contiguous().view(N, C, H * W), xi.reshape(N, C, H * W)),
            (torch.squeeze(q), np.squeeze(xi)),
            (F.dropout(q, 0.5, training=False), xi),
            (nnq.Dropout(0.5)(q), xi),
            (nnq.Dropout(0.5).train()(q), xi),
            (q.view(N, C, H, W) if not cl else q, xi),
        ]
        for y, ref in outs:
            cases += 1
            bad += int((y.int_repr().numpy().astype(np.int64) != ref).sum()) if tuple(y.shape) == ref.shape else ref.size
            qpb += int(y.q_scale() != s or y.q_zero_point() != zp)
    ok = bad == 0 and qpb == 0
    allok &= ok
    print("%s %-8s flatten/reshape/view/permute/squeeze/dropout/nnq.Dropout on NCHW+NHWC quantized tensors: "
          "%d results, %d bin mismatches, %d qparam mismatches" % ("PASS" if ok else "FAIL", engine, cases, bad, qpb))
# view() of a channels-last tensor to (N, -1) is not possible (non-viewable strides) -> RuntimeError; reshape copies
q = mk_q(edge_u8(rng, (2, 3, 4, 4)), 0.1, 5, channels_last=True)
try:
    q.view(2, -1); print("INFO view(N,-1) of a channels-last quantized tensor works")
except RuntimeError:
    print("INFO view(N,-1) of a channels-last quantized tensor raises (use reshape/flatten, which copy in logical order)")
print("%s %s: %s" % ("PASS" if allok else "FAIL", os.path.basename(__file__), "all checks above bit-exact (0 mismatches)" if allok else "see FAIL lines above"))
