"""``torch-lstm``: PyTorch's ``nn.LSTM`` + ``nn.Linear`` as its users write them: autograd,
``torch.optim.SGD``, eager, CPU; the peer of fastbp's ``RecurrentNetwork`` in
``compare_recurrent.py``."""

from __future__ import annotations

import numpy as np


class TorchLSTMTrainer:
    """An LSTM with one layer of ``hidden`` units and a softmax output, fastbp's initial
    parameters copied over (PyTorch's two biases: ``bias_ih`` = fastbp's ``b``, ``bias_hh`` = 0)."""

    def __init__(self, torch, net, X: np.ndarray, y: np.ndarray, batch: int, lr: float) -> None:
        self.torch, self.batch = torch, batch
        d, hidden, n_out = net.widths
        self.lstm = torch.nn.LSTM(d, hidden, batch_first=True)
        self.linear = torch.nn.Linear(hidden, n_out)
        W, b = net.layers[0]["W"], net.layers[0]["b"]
        with torch.no_grad():
            self.lstm.weight_ih_l0.copy_(torch.from_numpy(W[:d].T.copy()))
            self.lstm.weight_hh_l0.copy_(torch.from_numpy(W[d:].T.copy()))
            self.lstm.bias_ih_l0.copy_(torch.from_numpy(b.copy()))
            self.lstm.bias_hh_l0.zero_()
            self.linear.weight.copy_(torch.from_numpy(net.layers[1]["V"].T.copy()))
            self.linear.bias.copy_(torch.from_numpy(net.layers[1]["c"].copy()))
        params = [*self.lstm.parameters(), *self.linear.parameters()]
        self.optimizer = torch.optim.SGD(params, lr=lr)
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(y)

    def epoch(self, order: np.ndarray) -> None:
        """One pass of mini-batch SGD over the sequences in ``order``."""
        torch, batch = self.torch, self.batch
        order = torch.from_numpy(order)
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            self.optimizer.zero_grad()
            out, _ = self.lstm(self.X[idx])
            loss = torch.nn.functional.cross_entropy(self.linear(out[:, -1]), self.y[idx])
            loss.backward()
            self.optimizer.step()
