"""``fastbp search``: an Optuna study over ``Network``/``fit`` options, run on Dask."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from .common import CommandError, _optional
from .data import _load_data


def _value(text: str) -> Any:
    """``3`` → 3, ``0.5`` → 0.5, ``true`` → True, ``none`` → None, else the text."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


def _param(text: str) -> tuple[str, Any]:
    """``--param NAME=V1,V2,...`` (values) or ``NAME=LOW:HIGH[:log][:int]`` (a range)."""
    from ..sweep import Range

    name, sep, spec = text.partition("=")
    if not sep or not name or not spec:
        raise argparse.ArgumentTypeError(
            f"expected NAME=V1,V2,... or NAME=LOW:HIGH[:log][:int], got {text!r}"
        )
    if ":" in spec:
        low, high, *flags = spec.split(":")
        unknown = set(flags) - {"log", "int"}
        if unknown:
            raise argparse.ArgumentTypeError(f"{name}: unknown range flag(s) {sorted(unknown)}")
        try:
            return name, Range(float(low), float(high), log="log" in flags, integer="int" in flags)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{name}: expected numbers LOW:HIGH, got {spec!r}"
            ) from None
    return name, [_value(v) for v in spec.split(",")]


def _setting(text: str) -> tuple[str, Any]:
    """``--set NAME=VALUE``; a comma-separated value is a tuple (``hidden=100,30``)."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    values = [_value(v) for v in value.split(",")]
    return name, values[0] if len(values) == 1 else tuple(values)


def _add_search_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    from .data import _add_data_options

    p = commands.add_parser(
        "search",
        parents=[common],
        help="hyper-parameter search: an Optuna study on a Dask cluster",
        description="Search Network/fit options for the best validation accuracy: each "
        "trial trains a network and reports its accuracy per epoch to Optuna (which prunes "
        "hopeless trials); trials run on an embedded local Dask cluster (one single-threaded "
        "worker process per CPU) or on --scheduler's. The study is stored in a SQLite file "
        "as each trial ends; --resume continues it. Needs 'fastbp[search]'.",
    )
    _add_data_options(p)
    p.add_argument(
        "--param", type=_param, action="append", default=[], metavar="NAME=SPEC",
        help="an option to search: NAME=V1,V2,... (values) or NAME=LOW:HIGH[:log][:int] (a "
        "range); e.g. lr=0.1:10:log, lmbda=0,1,5, hidden=30,100",
    )  # fmt: skip
    p.add_argument(
        "--set", type=_setting, action="append", default=[], metavar="NAME=VALUE",
        help="an option every trial shares (defaults: hidden=30 epochs=5 batch_size=10 lr=3.0 "
        "threads=1); e.g. cost=cross_entropy",
    )  # fmt: skip
    p.add_argument("--sampler", choices=["tpe", "random", "grid"], default="tpe",
                   help="Optuna's default (tpe), random, or every combination (grid)")  # fmt: skip
    p.add_argument("--trials", type=int, help="trials to finish (16; grid: its size)")
    p.add_argument(
        "--pruner", choices=["median", "none"], default="median",
        help="stop a trial below the median of the completed trials' accuracy at an epoch "
        "(median; from the second epoch, once four have completed) or never (none)",
    )  # fmt: skip
    p.add_argument("--subset", type=int, metavar="N", help="train on the first N samples only")
    p.add_argument("--val-subset", type=int, metavar="N", help="score the first N only")
    p.add_argument("--storage", default="fastbp-search.db",
                   help="SQLite file (or RDB URL) of the study (fastbp-search.db)")  # fmt: skip
    p.add_argument("--study", default="fastbp", help="study name in the storage (fastbp)")
    p.add_argument("--resume", action="store_true", help="continue the study")
    p.add_argument(
        "--scheduler", metavar="tcp://HOST:PORT",
        help="run on this Dask scheduler's cluster (default: an embedded local cluster; "
        "'process': one trial after another in this process)",
    )  # fmt: skip
    p.add_argument("--workers", type=int, help="local cluster's workers (the CPUs available)")
    p.add_argument("--seed", type=int, default=0, help="seeds the sampler and the trials (0)")
    p.add_argument("--top", type=int, default=10, help="best trials in the table (10)")
    p.add_argument("--plot", metavar="FILE.png",
                   help="accuracy against each parameter and against time")  # fmt: skip


def _search(args: argparse.Namespace) -> int:
    _optional("optuna", "search", "fastbp search")
    _optional("distributed", "search", "fastbp search")
    if args.plot:
        _optional("matplotlib", "plot", "--plot")
    from ..sweep import search

    if not args.param:
        raise CommandError("--param: give at least one option to search, e.g. lr=0.1:10:log")
    space = dict(args.param)
    fixed = dict(args.set)
    dtype = fixed.get("dtype", "float32")
    description, data = _load_data(args, dtype)
    X, y = data["train"]
    X_val, y_val = data["val"]
    if args.subset is not None:
        X, y = X[: args.subset], y[: args.subset]
    if args.val_subset is not None:
        X_val, y_val = X_val[: args.val_subset], y_val[: args.val_subset]

    def line(trial: Any) -> None:
        value = "" if trial.value is None else f" {trial.value:.4f}"
        params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in trial.params.items())  # fmt: skip
        print(f"trial {trial.number} {trial.state.name.lower()}{value} {params}", flush=True)

    print(f"{description}: {X.shape[0]} training, {X_val.shape[0]} validation samples", flush=True)
    result = search(
        X, np.asarray(y), validation_data=(X_val, np.asarray(y_val)), space=space, fixed=fixed,
        sampler=args.sampler, n_trials=args.trials, pruner=args.pruner, storage=args.storage,
        study_name=args.study, resume=args.resume, scheduler=args.scheduler,
        workers=args.workers, seed=args.seed, on_trial=line,
    )  # fmt: skip
    print(result.table(args.top))
    if args.plot:
        result.plot(args.plot)
        print(f"plot: {args.plot}", file=sys.stderr)
    return 0
