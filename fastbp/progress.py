"""What training shows as it goes: the per-epoch line and the progress bar.

``fastbp train`` and ``fit(verbose=True)`` print the same line, ``epoch_line``; the bar is
tqdm's (``pip install "fastbp[progress]"``), drawn on stderr when it is a terminal.
"""

from __future__ import annotations

import sys
from typing import Any


def epoch_line(history: dict[str, list], i: int, n_train: int, n_val: int) -> str:
    """Epoch ``i``'s line of a history: its costs (data term; the penalty apart), the
    validation accuracy, the epoch's time and speed, and the gradient norms if monitored."""
    seconds = history["seconds"][i]
    parts = [f"Epoch {history['epoch'][i]}:"]
    if "train_cost" in history:
        parts.append(f"train cost {history['train_cost'][i]:.4f} |")
    if "val_cost" in history:
        correct = history["val_correct"][i]
        parts.append(
            f"val cost {history['val_cost'][i]:.4f}, {correct} / {n_val} ({correct / n_val:.2%}) |"
        )
    if "penalty" in history:
        parts.append(f"penalty {history['penalty'][i]:.4f} |")
    parts.append(f"{seconds:.3f} s, {n_train / max(seconds, 1e-9):,.0f} samples/s")
    if "grad_norm_b" in history:
        speeds = ", ".join(f"{v:.2g}" for v in history["grad_norm_b"][i])
        parts.append(f"| ‖∂C/∂b‖ per layer {speeds}")
    return " ".join(parts)


def progress_bar(total: int, unit: str = "epoch") -> Any:
    """A tqdm bar of ``total`` steps when stderr is a terminal and tqdm is installed, else
    None."""
    if not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True)
