"""``fastbp export``: a saved network as an ONNX model, for inference in any ONNX runtime."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .common import _load_model, _optional


def _model(path: str) -> Any:
    """The ``Network`` or ``RecurrentNetwork`` saved at ``path`` (by its header's ``model``)."""
    from .. import _storage
    from ..recurrent import RecurrentNetwork

    try:
        header = json.loads(_storage.open_archive(path, "fastbp model file")["header"].tobytes())
    except (OSError, ValueError, KeyError, TypeError):
        header = None  # Network.load says what is wrong with the file
    if isinstance(header, dict) and header.get("model") == "recurrent":
        return RecurrentNetwork.load(path)
    return _load_model(path)


def _export(args: argparse.Namespace) -> int:
    _optional("onnx", "onnx", "fastbp export")  # a missing package fails before any work
    net = _model(args.model)
    net.to_onnx(args.output)
    print(f"wrote {net!r} to {args.output} (ONNX: input 'input', outputs 'output' and 'label')")
    return 0
