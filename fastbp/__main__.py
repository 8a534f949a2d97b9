"""``python -m fastbp``: the ``fastbp`` command (see ``fastbp.cli``).

With no arguments it is ``fastbp train``: ``Network([784, 30, 10])`` trained by mini-batch SGD
(batch 10, η = 3.0) for five epochs on the bundled mini MNIST (8,000 training and 2,000 test
images from MNIST's test split; see ``fastbp.datasets.load_mini_mnist``), one line per epoch.
"""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
