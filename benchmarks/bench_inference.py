"""asv benchmarks of inference: ``predict`` on the 10,000 MNIST test images.

The images are the ones bundled with fastbp (the 10,000 MNIST test images, in two parts), so
these run with or without ``FASTBP_DATA``. The network is the seeded, untrained one: the values
of the parameters do not change the work. Compilation happens in ``setup``.
"""

from __future__ import annotations

from .common import DTYPES, SIZES, THREADS, mnist_test_images, network, use_threads, warm_up, widths


class Predict:
    """``net.predict(X)`` for 10,000 rows: the forward pass and the arg-max of each row."""

    params = (SIZES, DTYPES, THREADS)
    param_names = ("sizes", "dtype", "threads")
    warmup_time = 0.0

    def setup(self, sizes: str, dtype: str, threads: int) -> None:
        self.X = mnist_test_images(dtype)
        kwargs = use_threads(threads)
        warm_up(widths(sizes), 10, dtype, kwargs)
        self.net = network(widths(sizes), dtype, kwargs)

    def time_predict(self, sizes: str, dtype: str, threads: int) -> None:
        self.net.predict(self.X)
