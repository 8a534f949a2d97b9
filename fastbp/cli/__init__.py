"""The ``fastbp`` command (also ``python -m fastbp``): train, evaluate, predict, export, info.

``fastbp`` with no arguments is ``fastbp train``: ``Network([784, 30, 10])`` trained for five
epochs by mini-batch SGD (batch 10, η = 3.0) on the bundled mini MNIST, one line per epoch.

Data (``--data``): ``mini`` (the bundled set, no download; the default), ``mnist`` (the full
set in the book's 50,000 / 10,000 / 10,000 split, read from ``--data-dir``, else
``$FASTBP_DATA``, else the per-user cache; see ``fastbp.datasets.load_mnist``) or the path of
a NumPy ``.npz`` archive with arrays ``X_train``, ``y_train``, ``X_test``, ``y_test`` (or
Keras's ``x_train``, ...) and optionally ``X_val``, ``y_val``: images as ``(n, 784)`` or
``(n, 28, 28)`` floats in [0, 1] (or ``uint8`` 0-255, which are scaled, as the API does),
labels as integers.

Errors (a bad option or value, a missing or corrupt file, training that diverges) print one
line, ``fastbp: error: ...``, on stderr and exit with status 2; ``--debug`` shows the
traceback instead. Ctrl-C exits with status 130; a closed pipe on stdout (``| head``) ends the
command quietly with status 141; output to a closed stdout or stderr is discarded.

One module per part: ``parser`` (the command line and ``main``), ``train``, ``evaluate``,
``predict``, ``export`` (ONNX) and ``info`` (one command each), ``data`` (``--data``),
``plots`` (``--plot``) and ``common`` (what they share: exit statuses, one-line errors,
optional packages).
"""

from .common import EXIT_ERROR, EXIT_INTERRUPTED, CommandError
from .evaluate import confusion_matrix
from .parser import COMMANDS, build_parser, main
from .parser import _with_default_command as _with_default_command
from .plots import plot_confusion, plot_history

__all__ = [
    "COMMANDS",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "CommandError",
    "build_parser",
    "confusion_matrix",
    "main",
    "plot_confusion",
    "plot_history",
]
