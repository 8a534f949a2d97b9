"""``torch``: PyTorch as its users write it: ``nn.Sequential``, autograd, SGD, eager, CPU."""

from __future__ import annotations

from ..workload import ETA, Config, Data, epoch_order


class TorchTrainer:
    """PyTorch as its users write it: nn.Sequential, autograd and torch.optim.SGD, eager, CPU."""

    name = "torch"

    def __init__(self, torch, config: Config, data: Data, seed: int, weights, biases) -> None:
        self.torch, self.config, self.data, self.seed = torch, config, data, seed
        self.X = torch.from_numpy(data.X_train)
        self.Y = torch.from_numpy(data.Y_train)
        self.model = self.make_model(weights, biases)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=ETA)
        warm = self.make_model(weights, biases)  # warm-up on a throwaway copy
        self.train(warm, torch.optim.SGD(warm.parameters(), lr=ETA), torch.arange(64))

    def make_model(self, weights, biases):
        torch, nn = self.torch, self.torch.nn
        layers = []
        for w in weights:
            layers += [nn.Linear(w.shape[1], w.shape[0]), nn.Sigmoid()]
        model = nn.Sequential(*layers).to(getattr(torch, self.config.dtype))
        with torch.no_grad():  # the same initial parameters as fastbp
            for linear, w, b in zip(model[::2], weights, biases, strict=True):
                linear.weight.copy_(torch.from_numpy(w))
                linear.bias.copy_(torch.from_numpy(b))
        return model

    def train(self, model, optimizer, order) -> None:
        """One pass of mini-batch SGD over the training rows in ``order``."""
        batch = self.config.batch_size
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            xb, yb = self.X[idx], self.Y[idx]
            optimizer.zero_grad()
            loss = 0.5 * ((model(xb) - yb) ** 2).sum() / len(idx)  # the book's C, mean over m
            loss.backward()
            optimizer.step()

    def epoch(self, epoch: int) -> None:
        n = self.data.X_train.shape[0]
        order = self.torch.from_numpy(epoch_order(self.seed, epoch, n))
        self.train(self.model, self.optimizer, order)

    def accuracy(self) -> float:
        torch = self.torch
        with torch.no_grad():
            out = self.model(torch.from_numpy(self.data.X_test))
            labels = torch.from_numpy(self.data.y_test)
            return float((out.argmax(dim=1) == labels).double().mean())
