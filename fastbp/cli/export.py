"""``fastbp export``: a saved network as an ONNX model, for inference in any ONNX runtime."""

from __future__ import annotations

import argparse

from .common import _load_model, _optional


def _export(args: argparse.Namespace) -> int:
    _optional("onnx", "onnx", "fastbp export")  # a missing package fails before any work
    net = _load_model(args.model)
    net.to_onnx(args.output)
    print(f"wrote {net!r} to {args.output} (ONNX: input 'input', outputs 'output' and 'label')")
    return 0
