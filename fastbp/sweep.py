"""Hyper-parameter searches over ``Network``/``fit`` options: Optuna studies run on Dask.

>>> import fastbp
>>> result = fastbp.search(X, y, validation_data=(X_val, y_val),
...                        space={"lr": fastbp.sweep.Range(0.1, 10, log=True),
...                               "lmbda": [0.0, 1.0, 5.0]},
...                        n_trials=16, storage="study.db")  # doctest: +SKIP

Each trial builds a ``Network``, trains it with ``fit`` and reports its validation accuracy
after every epoch to Optuna, whose pruner (the median rule by default) can stop it early. The
trials run as Dask tasks: on an embedded ``LocalCluster`` (one single-threaded worker process
per CPU this process may use) or on the cluster whose scheduler address is given. The data
reaches every worker once: the workers of a cluster on this machine (the embedded one, or a
scheduler on a loopback address) map it from ``.npy`` files this process writes to a
temporary directory (in memory, ``/dev/shm``, where there is room), so they share its pages
and nothing is copied through sockets; the workers of a cluster elsewhere get it scattered.
Each worker process compiles (or loads from Numba's cache) the kernels once and reuses them
for every trial it runs.

Nothing is lost. The study lives in Optuna's RDB storage (a SQLite file by default), written
by this process, the client, as each trial ends. A trial is a pure function of its parameters
and seed, so when a worker dies mid-trial Dask runs the task again elsewhere (up to
``distributed.scheduler.allowed-failures`` times, then the trial is marked FAIL), and the
client records its one result. ``resume=True`` continues a study whose client was killed:
trials left RUNNING are run again with the same parameters, and new ones are asked for until
``n_trials`` have finished.

Pruning on the workers: a trial's pruner sees the intermediate values of the trials that had
completed when it started (sent with the task), plus its own, so that a worker needs no
connection to the storage; the values are written to the storage with the trial's result.

The samplers: ``"grid"`` (every combination of the listed values, each once, in order),
``"random"`` and ``"tpe"`` (Optuna's default sampler), seeded by ``seed``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import itertools
import math
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

try:
    import distributed
    import optuna
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'fastbp.search needs dask[distributed] and optuna: pip install "fastbp[search]"'
    ) from error

from . import _threads
from .network import Network

__all__ = ["Range", "SearchResult", "search"]

#: ``Network``'s options a search may set (``sizes`` through ``hidden``, ``seed`` per trial).
NETWORK_OPTIONS = tuple(
    p for p in inspect.signature(Network.__init__).parameters if p not in ("self", "sizes", "seed")
)
#: ``fit``'s options a search may set (the rest belong to the search: validation data, seed,
#: files, printing).
FIT_OPTIONS = tuple(
    p
    for p in inspect.signature(Network.fit).parameters
    if p
    not in (
        "self", "X", "y", "validation_data", "seed", "callback", "checkpoint", "resume",
        "verbose", "monitor_training",
    )
)  # fmt: skip
#: Options of the defaults every trial starts from: the book's chapter 1 run.
DEFAULTS: dict[str, Any] = {"hidden": 30, "epochs": 5, "batch_size": 10, "lr": 3.0, "threads": 1}
SAMPLERS = ("grid", "random", "tpe")
#: The storage used when none is named: a SQLite file in the working directory.
DEFAULT_STORAGE = "fastbp-search.db"


@dataclasses.dataclass(frozen=True)
class Range:
    """A numeric range to sample from (``random``, ``tpe``): ``low`` to ``high`` inclusive,
    on a log scale with ``log``; integers with ``integer`` (``step`` apart)."""

    low: float
    high: float
    log: bool = False
    integer: bool = False
    step: float | None = None

    def distribution(self, name: str) -> optuna.distributions.BaseDistribution:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"space[{name!r}]: expected low < high, got {self.low}, {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"space[{name!r}]: a log range needs low > 0, got {self.low}")
        if self.integer:
            return optuna.distributions.IntDistribution(
                int(self.low), int(self.high), log=self.log, step=int(self.step or 1)
            )
        return optuna.distributions.FloatDistribution(
            self.low, self.high, log=self.log, step=self.step
        )


def _check_option(name: str, where: str) -> None:
    if name != "hidden" and name not in NETWORK_OPTIONS and name not in FIT_OPTIONS:
        known = ", ".join(sorted({"hidden", *NETWORK_OPTIONS, *FIT_OPTIONS}))
        raise ValueError(f"{where}: {name!r} is not an option of Network or fit; known: {known}")


def _distributions(space: Mapping[str, Any], sampler: str) -> dict[str, Any]:
    """Optuna distributions of the space: a list of values is categorical, a ``Range``
    numeric."""
    if not isinstance(space, Mapping) or not space:
        raise ValueError("space: expected a non-empty mapping of option names to values")
    out = {}
    for name, values in space.items():
        _check_option(name, "space")
        if isinstance(values, Range):
            if sampler == "grid":
                raise ValueError(
                    f"space[{name!r}]: the grid sampler needs a list of values, got a Range"
                )
            out[name] = values.distribution(name)
        elif isinstance(values, Sequence) and not isinstance(values, str) and len(values) > 0:
            choices = tuple(v.item() if isinstance(v, np.generic) else v for v in values)
            out[name] = optuna.distributions.CategoricalDistribution(choices)
        else:
            raise ValueError(
                f"space[{name!r}]: expected a non-empty list of values or a Range, got {values!r}"
            )
    return out


def _sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    if name not in SAMPLERS:
        raise ValueError(f"sampler: expected one of {', '.join(SAMPLERS)}, got {name!r}")
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)  # the grid is enqueued


def _pruner(pruner: Any) -> optuna.pruners.BasePruner:
    if pruner is None or pruner == "none":
        return optuna.pruners.NopPruner()
    if pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1)
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    raise ValueError(f"pruner: expected 'median', 'none' or an Optuna pruner, got {pruner!r}")


class _Pruned(Exception):
    """Raised by the epoch callback of a trial its pruner stops."""


#: Prefix of the directories of ``SharedData``; the process id follows it.
SHARED_PREFIX = "fastbp-search-"


@dataclasses.dataclass(frozen=True)
class SharedData:
    """A search's data in ``.npy`` files of ``directory`` on this machine, which worker
    processes map read-only (``arrays``) instead of receiving a copy each."""

    directory: str
    n_out: int

    @classmethod
    def write(cls, data: dict[str, Any]) -> SharedData:
        """Write the arrays of ``data`` to a new directory: in ``/dev/shm`` when it has room
        for twice their size, else in the temporary directory. Directories that the searches
        of dead processes left behind (a client killed mid-search) are removed first."""
        size = sum(v.nbytes for v in data.values() if isinstance(v, np.ndarray))
        roots = [tempfile.gettempdir()]
        if os.path.isdir("/dev/shm") and shutil.disk_usage("/dev/shm").free > 2 * size:
            roots.insert(0, "/dev/shm")
        for root in roots:
            _remove_stale(root)
        directory = tempfile.mkdtemp(prefix=f"{SHARED_PREFIX}{os.getpid()}-", dir=roots[0])
        try:
            for name, value in data.items():
                if isinstance(value, np.ndarray):
                    np.save(os.path.join(directory, f"{name}.npy"), value)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        return cls(directory, int(data["n_out"]))

    def arrays(self) -> dict[str, Any]:
        """The arrays, mapped read-only (once per process)."""
        arrays = _MAPPED.get(self.directory)
        if arrays is None:
            arrays = {"n_out": self.n_out}
            for file in sorted(Path(self.directory).glob("*.npy")):
                arrays[file.stem] = np.load(file, mmap_mode="r", allow_pickle=False)
            _MAPPED.clear()  # one search's data at a time per worker
            _MAPPED[self.directory] = arrays
        return arrays

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


#: The arrays of the ``SharedData`` a worker process mapped last, by directory.
_MAPPED: dict[str, dict[str, Any]] = {}


def _remove_stale(root: str) -> None:
    """Remove the ``SharedData`` directories in ``root`` whose process is gone."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(root):
            pid = entry.name[len(SHARED_PREFIX) :].split("-", 1)[0]
            if not entry.name.startswith(SHARED_PREFIX) or not pid.isdigit():
                continue
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                shutil.rmtree(entry.path, ignore_errors=True)
            except OSError:  # alive, another user's
                pass


_LOOPBACK = ("127.", "localhost", "[::1]", "::1")


def _send(client: Any, data: dict[str, Any]) -> tuple[Any, SharedData | None]:
    """``(what the trials get, the SharedData to remove at the end or None)``: the data as
    ``SharedData`` when the scheduler listens on a loopback address (so every worker runs on
    this machine) and every worker sees its directory; else scattered to every worker."""
    host = str(client.scheduler.address).split("://", 1)[-1]
    if host.startswith(_LOOPBACK):
        try:
            shared = SharedData.write(data)
        except OSError:
            shared = None
        if shared is not None:
            if all(client.run(os.path.isdir, shared.directory).values()):
                return shared, shared
            shared.remove()
    return client.scatter([data], broadcast=True)[0], None


def run_trial(
    data: dict[str, np.ndarray] | SharedData,
    options: dict[str, Any],
    seed: int,
    pruner: optuna.pruners.BasePruner,
    completed: list[dict[int, float]],
) -> dict[str, Any]:
    """One trial, where it runs (a Dask worker): train a network with ``options`` and report
    each epoch's validation accuracy to ``pruner``, which also sees the per-epoch values of
    the ``completed`` trials. Returns the values, timings and whether it was pruned."""
    start = time.perf_counter()
    if isinstance(data, SharedData):
        data = data.arrays()
    options = dict(options)
    hidden = options.pop("hidden")
    hidden = [hidden] if isinstance(hidden, int) else list(hidden)
    X, y = data["X"], data["y"]
    sizes = [X.shape[1], *hidden, data["n_out"]]
    net_options = {k: v for k, v in options.items() if k in NETWORK_OPTIONS}
    fit_options = {k: v for k, v in options.items() if k in FIT_OPTIONS}
    # A study of its own, in memory, holding what the pruner compares with.
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(direction="maximize", pruner=pruner)
    finally:
        optuna.logging.set_verbosity(level)
    for values in completed:
        study.add_trial(
            optuna.trial.create_trial(value=values[max(values)], intermediate_values=values)
        )
    trial = study.ask()
    accuracy: list[float] = []
    seconds: list[float] = []

    def report(net: Network, epoch: int, history: dict[str, list]) -> None:
        accuracy.append(float(history["val_accuracy"][-1]))
        seconds.append(float(history["seconds"][-1]))
        trial.report(accuracy[-1], epoch)
        if trial.should_prune():
            raise _Pruned

    net = Network(sizes, seed=seed, **net_options)
    pruned = False
    fit_start = time.perf_counter()
    try:
        net.fit(X, y, validation_data=(data["X_val"], data["y_val"]), seed=seed,
                callback=report, **fit_options)  # fmt: skip
    except _Pruned:
        pruned = True
    end = time.perf_counter()
    return {
        "accuracy": accuracy,
        "pruned": pruned,
        "run": {
            "epoch_seconds": seconds,
            "fit_seconds": end - fit_start,
            "trial_seconds": end - start,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "ended": time.time(),
        },
    }


@dataclasses.dataclass
class SearchResult:
    """A finished search: the Optuna ``study`` (in its storage) and how it ran."""

    study: optuna.Study
    #: Seconds from the first trial's submission to the last result.
    seconds: float
    #: Where the trials ran: ``"local cluster of N workers"``, the scheduler's address, or
    #: ``"this process"``.
    where: str
    #: Seconds spent starting the embedded cluster and connecting to it (0 in this process).
    setup_seconds: float = 0.0
    #: Seconds spent sending the data to the workers (part of ``seconds``).
    scatter_seconds: float = 0.0

    @property
    def best_params(self) -> dict[str, Any]:
        return self.study.best_params

    @property
    def best_value(self) -> float:
        return float(self.study.best_value)

    def trials(self) -> list[optuna.trial.FrozenTrial]:
        """The finished trials, best first (completed, then pruned, then failed)."""
        states = optuna.trial.TrialState
        order = {states.COMPLETE: 0, states.PRUNED: 1, states.FAIL: 2}
        finished = [t for t in self.study.get_trials(deepcopy=False) if t.state in order]
        return sorted(
            finished,
            key=lambda t: (order[t.state], -(t.value if t.value is not None else -1), t.number),
        )

    def table(self, top: int = 10) -> str:
        """The ``top`` best trials as a text table: number, state, accuracy, epochs, seconds,
        parameters."""
        rows = [("trial", "state", "val acc", "epochs", "seconds", "parameters")]
        for t in self.trials()[:top]:
            value = "" if t.value is None else f"{t.value:.4f}"
            seconds = t.user_attrs.get("run", {}).get("trial_seconds")
            params = " ".join(f"{k}={_fmt(v)}" for k, v in t.params.items())
            rows.append(
                (
                    str(t.number), t.state.name, value, str(len(t.intermediate_values)),
                    "" if seconds is None else f"{seconds:.2f}", params,
                )
            )  # fmt: skip
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
        counts = {s: 0 for s in ("COMPLETE", "PRUNED", "FAIL")}
        for t in self.trials():
            counts[t.state.name] += 1
        summary = ", ".join(f"{n} {s.lower()}" for s, n in counts.items())
        lines.append(f"{summary}; {self.seconds:.1f} s on {self.where}")
        return "\n".join(line.rstrip() for line in lines)

    def plot(self, path: str | os.PathLike[str]) -> None:
        """Validation accuracy against each hyper-parameter and against the time each trial
        finished, one panel each, saved as an image at ``path``."""
        from matplotlib.figure import Figure

        trials = [t for t in self.trials() if t.value is not None]
        names = sorted({k for t in trials for k in t.params})
        fig = Figure(figsize=(4 * (len(names) + 1), 3.5), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, len(names) + 1))
        colour = {"COMPLETE": "tab:blue", "PRUNED": "tab:orange"}
        start = min((t.datetime_start for t in trials), default=None)
        for ax, name in zip(axes, names, strict=False):
            for state, c in colour.items():
                pts = [(t.params[name], t.value) for t in trials if t.state.name == state]
                if pts:
                    xs, ys = zip(*pts, strict=True)
                    ax.scatter([str(x) if isinstance(x, str) else x for x in xs], ys, c=c,
                               label=state.lower(), s=18)  # fmt: skip
            dist = trials[0].distributions.get(name) if trials else None
            if getattr(dist, "log", False):
                ax.set_xscale("log")
            ax.set_xlabel(name)
            ax.set_ylabel("validation accuracy")
        ax = axes[-1]
        for state, c in colour.items():
            pts = [
                ((t.datetime_complete - start).total_seconds(), t.value)
                for t in trials
                if t.state.name == state
            ]
            if pts:
                xs, ys = zip(*pts, strict=True)
                ax.scatter(xs, ys, c=c, label=state.lower(), s=18)
        ax.set_xlabel("seconds since the study began")
        ax.set_ylabel("validation accuracy")
        ax.legend()
        fig.suptitle(f"study {self.study.study_name}")
        fig.savefig(path, dpi=100)


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _storage_url(storage: str | os.PathLike[str] | None) -> str:
    storage = DEFAULT_STORAGE if storage is None else storage
    text = os.fspath(storage)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def _fast_commits(storage: optuna.storages.RDBStorage) -> None:
    """SQLite in write-ahead-log mode with ``synchronous=NORMAL``: a commit no longer waits
    for the disk (~4 ms each, one per reported epoch). A commit survives the client's crash or
    ``kill -9``; only a power cut or an OS crash may lose the last ones."""
    from sqlalchemy import event

    def pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(storage.engine, "connect", pragmas)
    storage.engine.dispose()  # connections made from now on get the pragmas


def _open_study(url: str, name: str, sampler: Any, pruner: Any, resume: bool) -> optuna.Study:
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        storage = optuna.storages.RDBStorage(url)
        if url.startswith("sqlite"):
            _fast_commits(storage)
        if not resume:
            names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
            if name in names:
                raise ValueError(
                    f"study_name: {url} already holds a study {name!r}; resume=True "
                    "(--resume) continues it, or name another"
                )
        elif name not in [s.study_name for s in optuna.get_all_study_summaries(storage)]:
            raise ValueError(f"study_name: no study {name!r} in {url} to resume")
        return optuna.create_study(
            storage=storage, study_name=name, direction="maximize", sampler=sampler,
            pruner=pruner, load_if_exists=resume,
        )  # fmt: skip
    finally:
        optuna.logging.set_verbosity(level)


def _client(scheduler: Any, workers: int | None) -> tuple[Any, Any, str]:
    """``(client, cluster to close or None, description)``; client None: this process."""
    if isinstance(scheduler, distributed.Client):
        return scheduler, None, str(scheduler.scheduler.address)
    if scheduler == "process":
        return None, None, "this process"
    if scheduler is not None:
        if not isinstance(scheduler, str):
            raise TypeError(f"scheduler: expected an address such as tcp://HOST:PORT, a "
                            f"distributed.Client or 'process', got {scheduler!r}")  # fmt: skip
        return distributed.Client(scheduler), None, scheduler
    n = _threads.available_cpus() if workers is None else workers
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"workers: expected a positive integer, got {workers!r}")
    cluster = distributed.LocalCluster(
        n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
    )
    return distributed.Client(cluster), cluster, f"a local cluster of {n} worker processes"


def search(
    X: Any,
    y: Any,
    *,
    validation_data: tuple[Any, Any],
    space: Mapping[str, Any],
    fixed: Mapping[str, Any] | None = None,
    sampler: str = "tpe",
    n_trials: int | None = None,
    pruner: Any = "median",
    storage: str | os.PathLike[str] | None = None,
    study_name: str = "fastbp",
    resume: bool = False,
    scheduler: Any = None,
    workers: int | None = None,
    seed: int = 0,
    on_trial: Callable[[optuna.trial.FrozenTrial], Any] | None = None,
) -> SearchResult:
    """Search ``space`` (option name → list of values or ``Range``) for the options of
    ``Network`` and ``fit`` that give the best validation accuracy.

    Parameters
    ----------
    X, y : training samples and integer class labels.
    validation_data : (X_val, y_val)
        Scored after every epoch: the accuracy reported to the pruner; the last epoch's is the
        trial's value.
    space : mapping
        Options to search: any argument of ``Network`` (but ``sizes``, ``seed``) or of ``fit``
        (but the data, ``seed``, ``callback``, files and printing), and ``hidden``: the width
        of the one hidden layer, or a tuple of widths.
    fixed : mapping, optional
        Options every trial shares, over the defaults ``hidden=30, epochs=5, batch_size=10,
        lr=3.0, threads=1`` (one thread per trial: the workers are the parallelism).
    sampler : {"tpe", "random", "grid"}
        Optuna's default sampler (TPE), random sampling, or every combination once (then
        ``n_trials`` defaults to their number).
    n_trials : int
        Trials to finish (completed, pruned or failed) in the study, counting those of earlier
        runs when resuming; 16 by default (the grid's size for ``"grid"``).
    pruner : "median", "none" or an Optuna pruner
        ``"median"``: stop a trial whose accuracy after an epoch (from the second) is below
        the median of the completed trials' at that epoch, once four have completed.
    storage : path or URL
        The study's storage: a SQLite file (default ``fastbp-search.db``) or an RDB URL.
    study_name : str
        The study in that storage; ``resume=True`` continues it, otherwise it must be new.
    scheduler : None, address, ``distributed.Client`` or ``"process"``
        None: an embedded ``LocalCluster`` of ``workers`` single-threaded worker processes
        (default: the CPUs this process may use), closed at the end; ``"tcp://HOST:PORT"``:
        the cluster of that scheduler; a client: its cluster; ``"process"``: every trial in
        this process, one after another.
    seed : int
        Seeds the sampler, and trial ``k``'s network and shuffling with ``seed + k``.
    on_trial : callable, optional
        Called with each finished trial (a ``FrozenTrial``) as its result is stored.
    """
    fixed = dict(fixed or {})
    for name in fixed:
        _check_option(name, "fixed")
    distributions = _distributions(space, sampler)
    grid = None
    if sampler == "grid":
        grid = [
            dict(zip(distributions, combo, strict=True))
            for combo in itertools.product(*(d.choices for d in distributions.values()))
        ]
    if n_trials is None:
        n_trials = len(grid) if grid is not None else 16
    if not isinstance(n_trials, int) or n_trials < 1:
        raise ValueError(f"n_trials: expected a positive integer, got {n_trials!r}")
    if not isinstance(validation_data, tuple | list) or len(validation_data) != 2:
        raise TypeError("validation_data: expected a pair (X_val, y_val)")
    X = np.ascontiguousarray(X)
    y = np.asarray(y)
    X_val, y_val = np.ascontiguousarray(validation_data[0]), np.asarray(validation_data[1])
    if X.ndim != 2 or y.shape != (X.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            f"X, y: expected (n, features) samples and n integer class labels, got shapes "
            f"{X.shape} and {y.shape}"
        )
    if X_val.ndim != 2 or X_val.shape[1] != X.shape[1] or y_val.shape != (X_val.shape[0],):
        raise ValueError(f"validation_data: expected samples of {X.shape[1]} features and labels")
    n_out = int(max(y.max(), y_val.max())) + 1
    base = {**DEFAULTS, **fixed}
    if "eta" in fixed or "eta" in distributions:  # fit's other name of lr: the default goes
        base.pop("lr", None)
    # Check every option once here (a bad name or value fails now, not in every trial).
    probe = {**base, **{k: d.to_external_repr(d.to_internal_repr(_first(d))) for k, d in
                        distributions.items()}}  # fmt: skip
    _check_trial_options(probe, X.shape[1], n_out)
    pruner = _pruner(pruner)
    study = _open_study(_storage_url(storage), study_name, _sampler(sampler, seed), pruner, resume)
    if grid is not None:
        level = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            for params in grid:
                study.enqueue_trial(params, skip_if_exists=True)
        finally:
            optuna.logging.set_verbosity(level)
    setup = time.perf_counter()
    client, cluster, where = _client(scheduler, workers)
    data = {"X": X, "y": y, "X_val": X_val, "y_val": y_val, "n_out": n_out}
    start = time.perf_counter()
    try:
        scatter = _run(study, client, data, base, distributions, pruner, n_trials, seed, on_trial)
    finally:
        if cluster is not None:
            client.close()
            cluster.close()
        elif client is not None and not isinstance(scheduler, distributed.Client):
            client.close()
    return SearchResult(study, time.perf_counter() - start, where, start - setup, scatter)


def _first(d: Any) -> Any:
    if isinstance(d, optuna.distributions.CategoricalDistribution):
        return d.choices[0]
    return d.low


def _check_trial_options(options: dict[str, Any], n_in: int, n_out: int) -> None:
    """Build a network and validate the fit options of one trial, without training."""
    from .training import FitOptions

    options = dict(options)
    hidden = options.pop("hidden")
    hidden = [hidden] if isinstance(hidden, int) else list(hidden)
    net_options = {k: v for k, v in options.items() if k in NETWORK_OPTIONS}
    fit_options = {k: v for k, v in options.items() if k in FIT_OPTIONS}
    Network([n_in, *hidden, n_out], **net_options)
    if "eta" in fit_options:  # fit's other name of lr (the book's)
        fit_options["lr"] = fit_options.pop("eta")
    FitOptions.validated(**fit_options)


_FINISHED = (
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.PRUNED,
    optuna.trial.TrialState.FAIL,
)


def _completed_params(
    study: optuna.Study, trial: optuna.trial.FrozenTrial, distributions: dict[str, Any]
) -> dict[str, Any]:
    """The parameters of a trial left RUNNING, any that were never stored suggested now."""
    if all(name in trial.params for name in distributions):
        return trial.params
    handle = optuna.trial.Trial(study, trial._trial_id)
    for name, d in distributions.items():
        if name in handle.params:
            continue
        if isinstance(d, optuna.distributions.CategoricalDistribution):
            handle.suggest_categorical(name, d.choices)
        elif isinstance(d, optuna.distributions.IntDistribution):
            handle.suggest_int(name, d.low, d.high, step=d.step, log=d.log)
        else:
            handle.suggest_float(name, d.low, d.high, step=d.step, log=d.log)
    return handle.params


class _Pending(NamedTuple):
    """A trial the client has started: its number, storage id and parameters."""

    number: int
    trial_id: int
    params: dict[str, Any]


def _run(
    study: optuna.Study,
    client: Any,
    data: dict[str, Any],
    base: dict[str, Any],
    distributions: dict[str, Any],
    pruner: optuna.pruners.BasePruner,
    n_trials: int,
    seed: int,
    on_trial: Callable[[optuna.trial.FrozenTrial], Any] | None,
) -> float:
    """Ask, run and tell trials until ``n_trials`` have finished; returns the seconds spent
    sending the data (``_send``)."""
    states = optuna.trial.TrialState
    # What the loop needs of the study, kept here rather than read back from the storage
    # after every trial: the per-epoch values of the completed trials (sent with each task to
    # its pruner) and how many trials have started.
    trials = study.get_trials(deepcopy=False)
    completed = [
        dict(t.intermediate_values)
        for t in trials
        if t.state == states.COMPLETE and t.intermediate_values
    ]
    started = sum(t.state != states.WAITING for t in trials)
    # Trials a killed client left running are run again, with the same parameters.
    # A client killed between asking for a trial and storing its last parameter left it with
    # some missing: they are suggested now (an enqueued grid point gives its own).
    leftover = [
        _Pending(t.number, t._trial_id, _completed_params(study, t, distributions))
        for t in trials
        if t.state == states.RUNNING
    ]
    storage = study._storage  # one trial read back by id (Optuna's Study has no public call)

    def record(trial: _Pending, outcome: Any) -> None:
        handle = optuna.trial.Trial(study, trial.trial_id)
        if isinstance(outcome, BaseException):
            handle.set_user_attr("error", f"{type(outcome).__name__}: {outcome}")
            study.tell(trial.number, state=states.FAIL)
        else:
            already = storage.get_trial(trial.trial_id).intermediate_values
            for epoch, value in enumerate(outcome["accuracy"]):
                if epoch not in already:
                    handle.report(value, epoch)
            handle.set_user_attr("run", outcome["run"])
            if outcome["pruned"]:
                study.tell(trial.number, state=states.PRUNED)
            elif outcome["accuracy"]:
                study.tell(trial.number, outcome["accuracy"][-1])
                completed.append(dict(enumerate(outcome["accuracy"])))
            else:  # epochs=0: nothing to score
                study.tell(trial.number, state=states.FAIL)
        if on_trial is not None:
            on_trial(storage.get_trial(trial.trial_id))

    def options_of(trial: _Pending) -> dict[str, Any]:
        return {**base, **trial.params}

    def next_trial() -> _Pending:
        nonlocal started
        handle = study.ask(distributions)
        started += 1
        return _Pending(handle.number, handle._trial_id, handle.params)

    if client is None:  # this process, one trial after another
        queue = leftover
        while queue or started < n_trials:
            trial = queue.pop(0) if queue else next_trial()
            try:
                outcome = run_trial(data, options_of(trial), seed + trial.number, pruner,
                                    list(completed))  # fmt: skip
            except (ValueError, TypeError, FloatingPointError) as exc:
                outcome = exc
            record(trial, outcome)
        return 0.0

    # One task queued behind each running one, so that no worker waits for the client to
    # store a result and ask for the next trial.
    slots = 2 * max(1, sum(client.nthreads().values()))
    pending: dict[Any, _Pending] = {}

    def submit(payload: Any, trial: _Pending) -> None:
        future = client.submit(
            run_trial, payload, options_of(trial), seed + trial.number, pruner, list(completed),
            pure=False, key=f"fastbp-trial-{study.study_name}-{trial.number}-{os.urandom(4).hex()}",
        )  # fmt: skip
        pending[future] = trial

    scatter = time.perf_counter()
    payload, shared = _send(client, data)
    try:
        scatter = time.perf_counter() - scatter
        for trial in leftover:
            submit(payload, trial)
        while True:
            while len(pending) < slots and started < n_trials:
                submit(payload, next_trial())
            if not pending:
                break
            done, _ = distributed.wait(list(pending), return_when="FIRST_COMPLETED")
            for future in done:
                trial = pending.pop(future)
                try:
                    outcome = future.result()
                except Exception as exc:  # any failure of the trial is its result
                    outcome = exc
                record(trial, outcome)
    finally:
        if shared is not None:
            shared.remove()
    return scatter
