"""scikit-learn estimators over ``Network``: ``NetworkClassifier`` and ``NetworkRegressor``.

>>> from fastbp.sklearn import NetworkClassifier
>>> clf = NetworkClassifier(hidden_layer_sizes=(30,), epochs=10, random_state=0)

Every option of ``Network`` and of ``Network.fit`` is a constructor parameter with the same
name and default (except where noted below), so the estimators work in pipelines,
``cross_val_score`` and ``GridSearchCV``, and pass scikit-learn's conformance checks
(``sklearn.utils.estimator_checks``). scikit-learn is an optional extra:
``pip install "fastbp[sklearn]"``.

What differs from ``Network.fit``:

- ``sizes`` is ``hidden_layer_sizes``: the input and output widths come from the data (one
  output neuron per class, one per target column).
- ``seed`` is ``random_state`` (an int, a ``numpy.random.RandomState`` or None), and it also
  draws the validation split.
- ``validation_data`` is ``validation_fraction``: with ``early_stopping`` (epochs without
  improvement, as in ``fit``) or the ``"halve"`` schedule, that share of the training data is
  held out (stratified by class for the classifier) and scored after each epoch. The
  classifier scores accuracy; the regressor the coefficient of determination R².
- The classifier's cost is the log-likelihood with a softmax output by default, so that
  ``predict_proba`` gives probabilities; the regressor's output activation is linear.
- ``checkpoint``/``resume`` are left out: ``warm_start`` and ``partial_fit`` continue training.
- ``sample_weight`` is not supported: the kernels weight every sample alike, and a weighted
  cost would need a second kernel path. ``fit`` has no ``sample_weight`` parameter, which is
  how scikit-learn's meta-estimators and checks learn that.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError('fastbp.sklearn needs scikit-learn: pip install "fastbp[sklearn]"') from error

import numpy as np
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .diagnostics import CollapseWarning
from .network import Network

__all__ = ["NetworkClassifier", "NetworkRegressor"]

#: The constructor parameters that become ``Network``'s arguments (``sizes`` and ``seed`` apart).
_NETWORK_PARAMS = (
    "activation", "output", "cost", "init", "bias_init", "alpha", "residual", "batch_norm",
    "dtype", "threads", "device",
)  # fmt: skip
#: The constructor parameters that become ``Network.fit``'s options.
_FIT_PARAMS = (
    "batch_size", "lr", "shuffle", "lmbda", "l1", "dropout", "optimizer", "momentum", "betas",
    "eps", "rho", "clip_norm", "clip_value", "monitor_gradients", "callback", "schedule",
    "patience", "max_halvings", "early_stopping", "verbose",
)  # fmt: skip


class _NetworkEstimator(BaseEstimator):
    """What both estimators share: the parameters, the network and the training calls."""

    #: Whether the output layer has one neuron per class (else one per target column).
    _classifier = False

    def __init__(
        self,
        hidden_layer_sizes: Sequence[int] = (30,),
        *,
        activation: str | Sequence[str] = "sigmoid",
        output: str | None = None,
        cost: str = "quadratic",
        init: str = "gaussian",
        bias_init: str | None = None,
        alpha: float | None = None,
        residual: bool | Sequence[bool] = False,
        batch_norm: bool = False,
        dtype: str = "float32",
        threads: int | None = None,
        device: str = "cpu",
        epochs: int = 30,
        batch_size: int = 10,
        lr: float = 0.1,
        shuffle: bool = True,
        lmbda: float = 0.0,
        l1: float = 0.0,
        dropout: float = 0.0,
        optimizer: str = "sgd",
        momentum: float = 0.9,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        rho: float = 0.99,
        clip_norm: float | None = None,
        clip_value: float | None = None,
        monitor_gradients: bool = False,
        callback: Callable[..., Any] | None = None,
        schedule: str = "constant",
        patience: int = 10,
        max_halvings: int = 7,
        early_stopping: int | None = None,
        validation_fraction: float = 0.1,
        warm_start: bool = False,
        random_state: Any = None,
        verbose: bool = False,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.output = output
        self.cost = cost
        self.init = init
        self.bias_init = bias_init
        self.alpha = alpha
        self.residual = residual
        self.batch_norm = batch_norm
        self.dtype = dtype
        self.threads = threads
        self.device = device
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.shuffle = shuffle
        self.lmbda = lmbda
        self.l1 = l1
        self.dropout = dropout
        self.optimizer = optimizer
        self.momentum = momentum
        self.betas = betas
        self.eps = eps
        self.rho = rho
        self.clip_norm = clip_norm
        self.clip_value = clip_value
        self.monitor_gradients = monitor_gradients
        self.callback = callback
        self.schedule = schedule
        self.patience = patience
        self.max_halvings = max_halvings
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose

    # --- what the two estimators supply ----------------------------------------------------

    def _encode(self, y: np.ndarray, *, reset: bool, classes: Any = None) -> np.ndarray:
        """Targets for ``Network.fit`` (class indices or rows); sets the target attributes when
        ``reset``."""
        raise NotImplementedError

    # --- shared ------------------------------------------------------------------------------

    def _new_network(self, n_out: int, seed: int) -> Network:
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, int | np.integer):
            sizes = (sizes,)
        try:
            hidden = [int(s) for s in sizes]
        except TypeError:
            raise TypeError(
                f"hidden_layer_sizes: expected a sequence of positive integers, got {sizes!r}"
            ) from None
        options = {name: getattr(self, name) for name in _NETWORK_PARAMS}
        return Network([self.n_features_in_, *hidden, n_out], seed=seed, **options)

    def _fit_options(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _FIT_PARAMS}

    def _check_validation_fraction(self) -> float:
        fraction = self.validation_fraction
        if not isinstance(fraction, float | int) or not 0 < fraction < 1:
            raise ValueError(f"validation_fraction: expected a number in (0, 1), got {fraction!r}")
        return float(fraction)

    def _split(self, X: np.ndarray, y: np.ndarray, rng: np.random.RandomState) -> tuple:
        """``X, y`` split into training and held-out validation parts."""
        fraction = self._check_validation_fraction()
        stratify = None
        if self._classifier:
            _, counts = np.unique(y, return_counts=True)
            stratify = y if counts.min() >= 2 else None
        seed = int(rng.randint(np.iinfo(np.int32).max))
        parts = train_test_split(X, y, test_size=fraction, random_state=seed, stratify=stratify)
        if min(len(parts[0]), len(parts[1])) == 0:
            raise ValueError(
                f"validation_fraction: {fraction} of {X.shape[0]} samples leaves no training or "
                "no validation sample"
            )
        return parts

    def _fit(self, X: Any, y: Any, *, partial: bool, classes: Any = None) -> Any:
        first = not (partial or self.warm_start) or not hasattr(self, "network_")
        X, y = validate_data(
            self,
            X,
            y,
            reset=first,
            dtype=(np.float64, np.float32),
            multi_output=not self._classifier,
            y_numeric=not self._classifier,
        )
        if partial and first and self._classifier and classes is None:
            raise ValueError("classes: expected every class label on the first partial_fit call")
        targets = self._encode(y, reset=first, classes=classes)
        rng = check_random_state(self.random_state)
        if first:
            seed = int(rng.randint(np.iinfo(np.int32).max))
            network = self._new_network(self._n_outputs, seed)
            self.loss_curve_: list[float] = []
            self.validation_scores_: list[float] | None = None
            self.n_iter_ = 0
        else:
            network = self.network_
        options = self._fit_options()
        needs_validation = not partial and (
            self.early_stopping is not None or self.schedule == "halve"
        )
        if partial:
            options.update(epochs=1, early_stopping=None, schedule="constant")
            self._train(network, X, targets, None, options)
        elif needs_validation:
            X_fit, X_val, t_fit, t_val = self._split(X, targets, rng)
            self.validation_scores_ = self.validation_scores_ or []
            self._train(network, X_fit, t_fit, (X_val, t_val), {**options, "epochs": self.epochs})
        else:
            self._train(network, X, targets, None, {**options, "epochs": self.epochs})
        self.network_ = network
        return self

    def _train(
        self,
        network: Network,
        X: np.ndarray,
        targets: np.ndarray,
        validation: tuple[np.ndarray, np.ndarray] | None,
        options: dict[str, Any],
    ) -> None:
        """Train ``network`` and record the loss curve (and validation scores)."""
        history = network.fit(
            X, targets, validation_data=validation, monitor_training=True, **options
        )
        self.loss_curve_.extend(float(c) for c in history["train_cost"])
        if validation is not None:
            self.validation_scores_.extend(float(a) for a in history["val_accuracy"])
        self.n_iter_ += len(history["epoch"])

    def _outputs(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "network_")
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        return self.network_.feedforward(X)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


class NetworkClassifier(ClassifierMixin, _NetworkEstimator):
    """A ``Network`` classifier with scikit-learn's estimator interface.

    One output neuron per class; labels of any kind (strings, booleans, integers in any
    range). By default the cost is the log-likelihood with a softmax output layer, so that
    ``predict_proba`` returns the outputs themselves; with another cost the outputs are
    clipped at 0 and scaled to sum to 1. See ``fastbp.sklearn``'s docstring for how the
    parameters map onto ``Network`` and ``Network.fit``.

    Attributes
    ----------
    classes_ : ndarray
        The class labels, sorted; output neuron ``j`` stands for ``classes_[j]``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had column names (a pandas DataFrame).
    network_ : Network
        The trained network.
    loss_curve_ : list of float
        Training cost (with its regularisation terms) after each epoch.
    validation_scores_ : list of float or None
        Validation accuracy after each epoch, when a validation split was held out.
    n_iter_ : int
        Epochs trained (by ``fit`` and ``partial_fit`` calls since the network was made).
    """

    _classifier = True

    def __init__(
        self,
        hidden_layer_sizes: Sequence[int] = (30,),
        *,
        activation: str | Sequence[str] = "sigmoid",
        output: str | None = None,
        cost: str = "log_likelihood",
        init: str = "gaussian",
        bias_init: str | None = None,
        alpha: float | None = None,
        residual: bool | Sequence[bool] = False,
        batch_norm: bool = False,
        dtype: str = "float32",
        threads: int | None = None,
        device: str = "cpu",
        epochs: int = 30,
        batch_size: int = 10,
        lr: float = 0.1,
        shuffle: bool = True,
        lmbda: float = 0.0,
        l1: float = 0.0,
        dropout: float = 0.0,
        optimizer: str = "sgd",
        momentum: float = 0.9,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        rho: float = 0.99,
        clip_norm: float | None = None,
        clip_value: float | None = None,
        monitor_gradients: bool = False,
        callback: Callable[..., Any] | None = None,
        schedule: str = "constant",
        patience: int = 10,
        max_halvings: int = 7,
        early_stopping: int | None = None,
        validation_fraction: float = 0.1,
        warm_start: bool = False,
        random_state: Any = None,
        verbose: bool = False,
    ) -> None:
        super().__init__(
            hidden_layer_sizes, activation=activation, output=output, cost=cost, init=init,
            bias_init=bias_init, alpha=alpha, residual=residual, batch_norm=batch_norm,
            dtype=dtype, threads=threads, device=device, epochs=epochs, batch_size=batch_size,
            lr=lr, shuffle=shuffle, lmbda=lmbda, l1=l1, dropout=dropout, optimizer=optimizer,
            momentum=momentum, betas=betas, eps=eps, rho=rho, clip_norm=clip_norm,
            clip_value=clip_value, monitor_gradients=monitor_gradients, callback=callback,
            schedule=schedule, patience=patience, max_halvings=max_halvings,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            warm_start=warm_start, random_state=random_state, verbose=verbose,
        )  # fmt: skip

    def _encode(self, y: np.ndarray, *, reset: bool, classes: Any = None) -> np.ndarray:
        check_classification_targets(y)
        if reset:
            labels = np.unique(y) if classes is None else np.unique(np.asarray(classes))
            if labels.shape[0] < 2:
                raise ValueError(
                    f"y: expected at least 2 classes, got 1 class ({labels[0]!r}); a classifier "
                    "needs two or more"
                )
            self.classes_ = labels
            self._n_outputs = labels.shape[0]
        unknown = np.setdiff1d(y, self.classes_)
        if unknown.size:
            raise ValueError(
                f"y: contains labels not in classes_ {self.classes_.tolist()}: {unknown.tolist()}"
            )
        return np.searchsorted(self.classes_, y).astype(np.int64)

    def fit(self, X: Any, y: Any) -> NetworkClassifier:
        """Train on ``X`` (n_samples, n_features) and labels ``y``; returns the estimator.

        A new network is made unless ``warm_start`` is set and one was fitted before (with
        the same classes), which is then trained for ``epochs`` more.
        """
        return self._fit(X, y, partial=False)

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> NetworkClassifier:
        """Train one epoch on ``X, y``. ``classes`` (every label there will be) is required on
        the first call and ignored after it."""
        return self._fit(X, y, partial=True, classes=classes)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probability of each class (columns in the order of ``classes_``) for each row."""
        out = self._outputs(X).astype(np.float64)
        if self.network_.activations[-1] == "softmax":
            return out
        out = np.clip(out, 0.0, None)
        sums = out.sum(axis=1, keepdims=True)
        uniform = np.full_like(out, 1.0 / out.shape[1])
        return np.divide(out, sums, out=uniform, where=sums > 0)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class label of each row."""
        check_is_fitted(self, "network_")
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        return tags


class NetworkRegressor(RegressorMixin, _NetworkEstimator):
    """A ``Network`` regressor with scikit-learn's estimator interface.

    One output neuron per target column (``y`` of shape ``(n_samples,)`` or
    ``(n_samples, n_targets)``), a linear output layer and the quadratic cost by default. See
    ``fastbp.sklearn``'s docstring for how the parameters map onto ``Network`` and
    ``Network.fit``. Targets far from unit scale train better standardised (for example with
    ``sklearn.compose.TransformedTargetRegressor``).

    Attributes
    ----------
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had column names (a pandas DataFrame).
    network_ : Network
        The trained network.
    loss_curve_ : list of float
        Training cost (with its regularisation terms) after each epoch.
    validation_scores_ : list of float or None
        Validation R² after each epoch, when a validation split was held out.
    n_iter_ : int
        Epochs trained (by ``fit`` and ``partial_fit`` calls since the network was made).
    """

    def __init__(
        self,
        hidden_layer_sizes: Sequence[int] = (30,),
        *,
        activation: str | Sequence[str] = "sigmoid",
        output: str | None = "linear",
        cost: str = "quadratic",
        init: str = "gaussian",
        bias_init: str | None = None,
        alpha: float | None = None,
        residual: bool | Sequence[bool] = False,
        batch_norm: bool = False,
        dtype: str = "float32",
        threads: int | None = None,
        device: str = "cpu",
        epochs: int = 30,
        batch_size: int = 10,
        lr: float = 0.1,
        shuffle: bool = True,
        lmbda: float = 0.0,
        l1: float = 0.0,
        dropout: float = 0.0,
        optimizer: str = "sgd",
        momentum: float = 0.9,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        rho: float = 0.99,
        clip_norm: float | None = None,
        clip_value: float | None = None,
        monitor_gradients: bool = False,
        callback: Callable[..., Any] | None = None,
        schedule: str = "constant",
        patience: int = 10,
        max_halvings: int = 7,
        early_stopping: int | None = None,
        validation_fraction: float = 0.1,
        warm_start: bool = False,
        random_state: Any = None,
        verbose: bool = False,
    ) -> None:
        super().__init__(
            hidden_layer_sizes, activation=activation, output=output, cost=cost, init=init,
            bias_init=bias_init, alpha=alpha, residual=residual, batch_norm=batch_norm,
            dtype=dtype, threads=threads, device=device, epochs=epochs, batch_size=batch_size,
            lr=lr, shuffle=shuffle, lmbda=lmbda, l1=l1, dropout=dropout, optimizer=optimizer,
            momentum=momentum, betas=betas, eps=eps, rho=rho, clip_norm=clip_norm,
            clip_value=clip_value, monitor_gradients=monitor_gradients, callback=callback,
            schedule=schedule, patience=patience, max_halvings=max_halvings,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            warm_start=warm_start, random_state=random_state, verbose=verbose,
        )  # fmt: skip

    def _encode(self, y: np.ndarray, *, reset: bool, classes: Any = None) -> np.ndarray:
        rows = np.asarray(y, dtype=np.float64)
        rows = rows.reshape(-1, 1) if rows.ndim == 1 else rows
        if reset:
            self._n_outputs = rows.shape[1]
            self._one_target = np.ndim(y) == 1
        elif rows.shape[1] != self._n_outputs:
            raise ValueError(
                f"y: expected {self._n_outputs} target column(s), as in the first fit, "
                f"got {rows.shape[1]}"
            )
        return rows

    def _train(
        self,
        network: Network,
        X: np.ndarray,
        targets: np.ndarray,
        validation: tuple[np.ndarray, np.ndarray] | None,
        options: dict[str, Any],
    ) -> None:
        """Train ``network``; with a validation split, one epoch a call, scoring R² after each
        and stopping after ``early_stopping`` epochs without improvement (the best epoch's
        parameters are restored): ``fit``'s own early stopping and schedule follow the
        validation accuracy, which a regressor does not have. ``fit``'s collapse test
        (``CollapseWarning``: outputs alike for every input at chance accuracy) judges
        classifiers, so it is not applied to a regressor."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=CollapseWarning)
            self._train_regressor(network, X, targets, validation, options)

    def _train_regressor(
        self,
        network: Network,
        X: np.ndarray,
        targets: np.ndarray,
        validation: tuple[np.ndarray, np.ndarray] | None,
        options: dict[str, Any],
    ) -> None:
        if validation is None:
            super()._train(network, X, targets, None, options)
            return
        if self.schedule == "halve":
            raise ValueError(
                "schedule: 'halve' follows the validation accuracy, which a regressor does not "
                "have; use 'constant' (with early_stopping)"
            )
        X_val, t_val = validation
        epochs = options.pop("epochs")
        options["early_stopping"] = None
        best, best_params, stale = -np.inf, network.params.copy(), 0
        for _ in range(epochs):
            super()._train(network, X, targets, None, {**options, "epochs": 1})
            score = float(r2_score(t_val, network.feedforward(X_val)))
            self.validation_scores_.append(score)
            if score > best:
                best, best_params, stale = score, network.params.copy(), 0
            else:
                stale += 1
                if stale >= self.early_stopping:
                    break
        network.params[...] = best_params

    def fit(self, X: Any, y: Any) -> NetworkRegressor:
        """Train on ``X`` (n_samples, n_features) and targets ``y`` (n_samples,) or
        (n_samples, n_targets); returns the estimator.

        A new network is made unless ``warm_start`` is set and one was fitted before, which
        is then trained for ``epochs`` more.
        """
        return self._fit(X, y, partial=False)

    def partial_fit(self, X: Any, y: Any) -> NetworkRegressor:
        """Train one epoch on ``X, y``."""
        return self._fit(X, y, partial=True)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets: ``(n_samples,)`` when fitted on one target, else
        ``(n_samples, n_targets)``."""
        out = self._outputs(X).astype(np.float64)
        return out[:, 0] if self._one_target else out

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
