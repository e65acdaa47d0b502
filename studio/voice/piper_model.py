"""Loading a Piper ONNX voice: phoneme alignments and deterministic noise.

Piper's VITS graph draws Gaussian noise with ``RandomNormalLike`` (for the duration
predictor and the flow), unseeded, so every run sounds (and times) a little different.
The studio promises that the same voice, text and settings give the same audio, so each
``RandomNormalLike`` node is replaced by a small deterministic generator built from
standard ONNX ops: the element index goes through a sine hash (in float64) to two
uniform numbers and a Box–Muller transform to a standard normal value. Its statistics
match the random version (mean 0, unit variance, no correlation between neighbours).

The graph also gets the alignment output that reports samples per phoneme id (the same
patch ``PiperVoice.load(..., include_alignments=True)`` applies, from piper-tts).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

NOISE_SEED = 0


def _replace_random_nodes(model, seed: int = NOISE_SEED) -> int:
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    nodes = []
    count = 0
    for node in graph.node:
        if node.op_type != "RandomNormalLike":
            nodes.append(node)
            continue
        p = f"/studio_noise{count}/"
        count += 1
        x, y = node.input[0], node.output[0]

        def const(name: str, value, dtype=np.float64, p=p) -> str:
            full = f"{p}const_{name}"
            graph.initializer.append(numpy_helper.from_array(np.array(value, dtype=dtype), full))
            return full

        new = [
            helper.make_node("Shape", [x], [p + "shape"]),
            helper.make_node("Size", [x], [p + "count"]),
            helper.make_node(
                "Range", [const("zero", 0, np.int64), p + "count", const("one", 1, np.int64)],
                [p + "index"],
            ),
            helper.make_node("Cast", [p + "index"], [p + "t"], to=TensorProto.DOUBLE),
        ]
        for name, mul, add in (("u1", 12.9898, 0.5 + seed * 0.618034),
                               ("u2", 78.233, 1.7 + seed * 0.414214)):
            q = p + name
            new += [
                helper.make_node("Mul", [p + "t", const(name + "_mul", mul)], [q + "_a"]),
                helper.make_node("Add", [q + "_a", const(name + "_add", add)], [q + "_b"]),
                helper.make_node("Sin", [q + "_b"], [q + "_c"]),
                helper.make_node("Mul", [q + "_c", const(name + "_k", 43758.5453)], [q + "_d"]),
                helper.make_node("Floor", [q + "_d"], [q + "_e"]),
                helper.make_node("Sub", [q + "_d", q + "_e"], [q]),
            ]
        new += [
            helper.make_node("Mul", [p + "u1", const("scale", 1 - 2e-9)], [p + "u1_scaled"]),
            helper.make_node("Add", [p + "u1_scaled", const("eps", 1e-9)], [p + "u1_safe"]),
            helper.make_node("Log", [p + "u1_safe"], [p + "log"]),
            helper.make_node("Mul", [p + "log", const("minus2", -2.0)], [p + "log2"]),
            helper.make_node("Sqrt", [p + "log2"], [p + "radius"]),
            helper.make_node("Mul", [p + "u2", const("two_pi", 2 * np.pi)], [p + "angle"]),
            helper.make_node("Cos", [p + "angle"], [p + "cos"]),
            helper.make_node("Mul", [p + "radius", p + "cos"], [p + "normal"]),
            helper.make_node("Cast", [p + "normal"], [p + "normal32"], to=TensorProto.FLOAT),
            helper.make_node("Reshape", [p + "normal32", p + "shape"], [y]),
        ]
        nodes += new
    del graph.node[:]
    graph.node.extend(nodes)
    return count


def load_piper_voice(model_path: Path, config_path: Path):
    """A ``piper.PiperVoice`` with alignments and deterministic noise, on the CPU."""
    import onnx
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    config = PiperConfig.from_dict(json.loads(Path(config_path).read_text(encoding="utf-8")))
    model = onnx.load(str(model_path))
    try:
        from piper.patch_voice_with_alignment import add_alignment_output

        add_alignment_output(model)
    except ValueError:
        pass  # already patched, or a graph without the duration tensor (no alignments)
    _replace_random_nodes(model)
    options = onnxruntime.SessionOptions()
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
    )
    return PiperVoice(session=session, config=config)
