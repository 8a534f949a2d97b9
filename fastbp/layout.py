"""Where a feed-forward network's parameters sit in its one flat buffer.

Layer ``l`` (1-based) occupies ``params[offsets[l - 1]:offsets[l]]``: its weights ``w`` row by
row (shape ``(n_out, n_in)``, the book's orientation), its biases ``b``; then, with a residual
connection between unequal widths, its projection ``P`` (shape ``(n_out, n_in)``); then, if it
is batch-normalised, its scales ``γ`` and shifts ``β``. Gradients and optimiser state use the
same layout, so an update, a clipping, a save or an all-reduce is one operation over one
buffer. ``Layout`` is the one place that computes it: the network's views, the kernels'
``offsets`` (``fastbp.kernels.views``), the GPU's views and the model files all take it from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

#: ``skips``: no residual connection, an identity one (equal widths), a projected one.
NO_SKIP, IDENTITY, PROJECTED = 0, 1, 2


@dataclass(frozen=True)
class Layout:
    """The layout of a network with layer widths ``sizes`` (input first), for each layer
    ``l ≥ 1`` its kind of residual connection (``skips[l - 1]``: ``NO_SKIP``, ``IDENTITY`` or
    ``PROJECTED``) and whether it is batch-normalised (``batch_norm[l - 1]``)."""

    sizes: tuple[int, ...]
    skips: tuple[int, ...]
    batch_norm: tuple[bool, ...]

    @classmethod
    def of(cls, sizes: tuple[int, ...], residual: tuple[bool, ...], batch_norm: bool) -> Layout:
        """The layout of a network: ``residual`` has one flag per hidden layer, a skip that
        adds ``aˡ⁻¹`` (projected where the widths differ); ``batch_norm`` normalises every
        hidden layer."""
        n_hidden = len(sizes) - 2
        skips = tuple(
            NO_SKIP if l > n_hidden or not residual[l - 1]
            else (IDENTITY if sizes[l] == sizes[l - 1] else PROJECTED)
            for l in range(1, len(sizes))
        )  # fmt: skip
        bn = tuple(batch_norm and l <= n_hidden for l in range(1, len(sizes)))
        return cls(tuple(sizes), skips, bn)

    def count(self, l: int) -> int:
        """Parameters of layer ``l``."""
        n_out, n_in = self.sizes[l], self.sizes[l - 1]
        projection = n_out * n_in if self.skips[l - 1] == PROJECTED else 0
        return n_out * n_in + n_out + projection + (2 * n_out if self.batch_norm[l - 1] else 0)

    @cached_property
    def offsets(self) -> np.ndarray:
        """``offsets[l - 1]``: where layer ``l`` starts; ``offsets[-1]``: the buffer's size."""
        counts = [self.count(l) for l in range(1, len(self.sizes))]
        return np.concatenate(([0], np.cumsum(counts))).astype(np.int64)

    @cached_property
    def units(self) -> np.ndarray:
        """Cumulative neuron counts: layer ``l``'s neurons are ``units[l - 1]:units[l]`` of
        the per-neuron buffers (the work buffers, the batch-norm statistics)."""
        return np.concatenate(([0], np.cumsum(self.sizes[1:]))).astype(np.int64)

    @property
    def size(self) -> int:
        """Values in the flat buffer."""
        return int(sum(self.count(l) for l in range(1, len(self.sizes))))

    def weights(self, flat: np.ndarray, l: int) -> np.ndarray:
        """Layer ``l``'s ``w``, a view of shape ``(n_out, n_in)``."""
        n_out, n_in = self.sizes[l], self.sizes[l - 1]
        start = int(self.offsets[l - 1])
        return flat[start : start + n_out * n_in].reshape(n_out, n_in)

    def biases(self, flat: np.ndarray, l: int) -> np.ndarray:
        """Layer ``l``'s ``b``, a view of shape ``(n_out,)``."""
        n_out, n_in = self.sizes[l], self.sizes[l - 1]
        start = int(self.offsets[l - 1]) + n_out * n_in
        return flat[start : start + n_out]

    def projection(self, flat: np.ndarray, l: int) -> np.ndarray:
        """Layer ``l``'s residual projection ``P`` (``PROJECTED`` layers), ``(n_out, n_in)``."""
        n_out, n_in = self.sizes[l], self.sizes[l - 1]
        start = int(self.offsets[l - 1]) + n_out * n_in + n_out
        return flat[start : start + n_out * n_in].reshape(n_out, n_in)

    def gamma(self, flat: np.ndarray, l: int) -> np.ndarray:
        """Layer ``l``'s batch-norm scales ``γ`` (batch-normalised layers)."""
        end, n = int(self.offsets[l]), self.sizes[l]
        return flat[end - 2 * n : end - n]

    def beta(self, flat: np.ndarray, l: int) -> np.ndarray:
        """Layer ``l``'s batch-norm shifts ``β`` (batch-normalised layers)."""
        end, n = int(self.offsets[l]), self.sizes[l]
        return flat[end - n : end]

    def decayed(self) -> np.ndarray:
        """A mask of the buffer: 1 where weight decay applies (the weights ``w``), else 0."""
        mask = np.zeros(self.size)
        for l in range(1, len(self.sizes)):
            start = int(self.offsets[l - 1])
            mask[start : start + self.sizes[l] * self.sizes[l - 1]] = 1
        return mask
