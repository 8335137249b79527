#!/usr/bin/python3
"""Writes what TorchScript holds of a saved model, for reading while working on the frontend.

    /usr/bin/python3 tests/model/dump_torchscript.py MODEL.pt OUT_PREFIX [--engine qnnpack|onednn]

writes OUT_PREFIX.graph.txt (m.graph), OUT_PREFIX.inlined_graph.txt (m.inlined_graph) and
OUT_PREFIX.code.txt (m.code of forward, then the code of every submodule that has one, by
qualified name and original class name). With --nodes also OUT_PREFIX.nodes.txt: every node of
m.graph with its kind, output debug names and the first line of its source range (for a scripted
FX GraphModule the generated line `name = op(...)` that holds the FX node name).
The quantized engine is set before loading (int8 models re-pack their weights at load).
"""
import argparse

import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("out_prefix")
    ap.add_argument("--engine", default="qnnpack", choices=["qnnpack", "onednn"])
    ap.add_argument("--nodes", action="store_true")
    args = ap.parse_args()
    torch.backends.quantized.engine = args.engine
    m = torch.jit.load(args.model)
    with open(args.out_prefix + ".graph.txt", "w") as f:
        f.write(str(m.graph))
    with open(args.out_prefix + ".inlined_graph.txt", "w") as f:
        f.write(str(m.inlined_graph))
    with open(args.out_prefix + ".code.txt", "w") as f:
        f.write("# forward (%s)\n%s" % (m.original_name, m.code))
        for name, sub in m.named_modules():
            try:
                code = sub.code if name else None
            except (RuntimeError, AttributeError):  # a module without a forward (a traced container)
                code = None
            if code:
                f.write("\n# %s (%s)\n%s" % (name, sub.original_name, code))
    if args.nodes:
        with open(args.out_prefix + ".nodes.txt", "w") as f:
            for node in m.graph.nodes():
                if node.kind() in ("prim::Constant", "prim::GetAttr"):
                    continue
                lines = node.sourceRange().splitlines()
                marks = [i for i, line in enumerate(lines) if "<--- HERE" in line]
                here = lines[marks[0] - 1].strip() if marks and marks[0] > 0 else (lines[0].strip() if lines else "")
                f.write("%-24s %-40s %s\n" % (node.kind(), ",".join(o.debugName() for o in node.outputs()), here[:160]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
