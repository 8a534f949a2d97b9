"""How many threads fastbp's compiled calls run on: the CPUs this process may use, and one
while the machine has no CPU to spare.

Threads only pay while each has a CPU of its own. ``default_threads`` counts the CPUs this
process may run on (its affinity mask, as ``taskset`` or ``os.sched_setaffinity`` set it, and
a container's CPU quota), unless the user chose a number (``NUMBA_NUM_THREADS`` or
``OMP_NUM_THREADS`` in the environment). And while other processes keep the CPUs busy, a
thread that loses its CPU for a scheduler time slice (milliseconds) holds up the others at
every meeting, so that two threads can take many times as long as one. fastbp watches for it:

- a team epoch (``kernels.train_epoch_columns``) that stalls is taken over by one of its
  threads, which finishes it alone; if its threads waited for a CPU meanwhile (Linux's
  ``/proc/thread-self/schedstat``), that is contention (``record_team``);
- for Numba's threads, ``threads`` measures how long this process's threads waited for a CPU
  during a training epoch: ``WAIT_SHARE`` of the epoch or more is contention.

Either, in two calls in a row, makes ``Contention`` run every threaded call on one thread for a
while (a second, then twice as long each time contention is seen again, up to
``LONGEST_BACKOFF``), after which threads are tried again. The weights are the same either
way: every kernel computes each value whole, in a fixed order, whatever the number of threads.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numba

from ._openmp import OPENMP_SPIN_COUNT as OPENMP_SPIN_COUNT  # set at import: see there

#: Threaded calls in a row that must find contention before calls go to one thread.
STRIKES = 2
#: Seconds on one thread after contention is first seen; doubled each time it is seen again.
FIRST_BACKOFF = 1.0
#: Most seconds on one thread before threads are tried again.
LONGEST_BACKOFF = 32.0
#: Share of a threaded epoch's time that its threads may wait for a CPU before it counts as
#: contention (measured on an idle 2-CPU machine: up to 0.08; beside one busy process: 0.3-0.8).
WAIT_SHARE = 0.2
#: The same for a team epoch in which a member was taken over (``record_team``): the takeover
#: ends the waits early, so a smaller share says as much.
TEAM_WAIT_SHARE = 0.05
#: Seconds a reading of the CPUs this process may use is reused.
_CPUS_TTL = 1.0


def _quota_cpus(
    cgroup: str | Path = "/proc/self/cgroup", root: str | Path = "/sys/fs/cgroup"
) -> float | None:
    """CPUs a cgroup quota allows this process (``cpu.max`` in cgroup v2, ``cpu.cfs_quota_us``
    / ``cpu.cfs_period_us`` in v1), or None without a quota. ``cgroup`` lists the process's
    cgroups, under the hierarchy mounted at ``root``."""
    try:
        lines = Path(cgroup).read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        relative = path.lstrip("/")
        if controllers == "":  # v2: one hierarchy
            where = Path(root) / relative
            try:
                quota, period = (where / "cpu.max").read_text().split()[:2]
            except (OSError, ValueError):
                continue
            if quota != "max":
                return int(quota) / int(period)
        elif "cpu" in controllers.split(","):
            for mount in ("cpu,cpuacct", "cpu", "cpuacct,cpu"):
                where = Path(root) / mount / relative
                try:
                    quota = int((where / "cpu.cfs_quota_us").read_text())
                    period = int((where / "cpu.cfs_period_us").read_text())
                except (OSError, ValueError):
                    continue
                if quota > 0 and period > 0:
                    return quota / period
    return None


def _affinity_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


_cpus_read: tuple[float, int] = (-math.inf, 1)


def available_cpus() -> int:
    """The CPUs this process may use: its affinity mask, capped by a cgroup CPU quota (a
    container started with ``--cpus 1.5`` may use 2)."""
    global _cpus_read
    now = time.monotonic()
    if now - _cpus_read[0] > _CPUS_TTL:
        cpus = _affinity_cpus()
        quota = _quota_cpus()
        if quota is not None:
            cpus = min(cpus, max(1, math.ceil(quota)))
        _cpus_read = (now, max(1, cpus))
    return _cpus_read[1]


def user_threads() -> tuple[int, str] | None:
    """The thread count the user set in the environment and the variable that set it
    (``NUMBA_NUM_THREADS`` first, then ``OMP_NUM_THREADS``), or None."""
    for name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip().split(",")[0]
        if value.isdigit() and int(value) > 0:
            return int(value), name
    return None


def default_threads() -> int:
    """Threads of a call that asks for none: the user's ``NUMBA_NUM_THREADS`` or
    ``OMP_NUM_THREADS`` if set, else the CPUs this process may use; at most Numba's."""
    most = numba.config.NUMBA_NUM_THREADS
    chosen = user_threads()
    return max(1, min(most, chosen[0] if chosen else available_cpus()))


def describe() -> str:
    """The default thread count and why, for ``fastbp info``."""
    most = numba.config.NUMBA_NUM_THREADS
    chosen = user_threads()
    if chosen:
        why = f"{chosen[1]}={chosen[0]}"
    else:
        affinity, quota = _affinity_cpus(), _quota_cpus()
        why = f"this process may run on {affinity} of {os.cpu_count()} CPUs"
        if quota is not None:
            why += f", a cgroup quota of {quota:g} CPUs"
    state = "; one while other processes keep the CPUs busy" if default_threads() > 1 else ""
    if CONTENTION.active():
        state += " (now: busy)"
    spin = os.environ.get("GOMP_SPINCOUNT")
    spin = f"; OpenMP workers sleep after GOMP_SPINCOUNT={spin} spins" if spin else ""
    return f"{default_threads()} ({why}; Numba's most: {most}){state}{spin}"


class Contention:
    """Whether other work leaves this process's threads without a CPU, as recently seen.

    One per process (``CONTENTION``): the CPUs are the machine's, whichever network trains.
    """

    def __init__(self) -> None:
        self.until = -math.inf  # time.monotonic() before which threaded calls use one thread
        self.backoff = 0.0
        self.strikes = 0  # threaded calls in a row that found contention
        self.seen = 0  # times contention was seen

    def active(self) -> bool:
        """Whether threaded calls run on one thread now."""
        return time.monotonic() < self.until

    def record(self, contended: bool) -> None:
        """What a threaded call found. Contention in ``STRIKES`` calls in a row, or in the first
        call after a spell on one thread, starts a spell (twice as long as the last, from
        ``FIRST_BACKOFF`` to ``LONGEST_BACKOFF``): one call that met an idle machine's hiccup
        does not. A call without contention ends the backoff."""
        if not contended:
            self.strikes, self.backoff = 0, 0.0
            return
        self.seen += 1
        self.strikes += 1
        if self.strikes >= STRIKES or self.backoff > 0:
            self.backoff = min(max(2 * self.backoff, FIRST_BACKOFF), LONGEST_BACKOFF)
            self.until = time.monotonic() + self.backoff


CONTENTION = Contention()


def record_team(took_over: bool, waited_ns: int, elapsed_ns: int) -> None:
    """What a team epoch found: contention if its members waited for a CPU for ``WAIT_SHARE``
    of the epoch, or if member 0 took over another member's share after stalls and the members
    waited for ``TEAM_WAIT_SHARE`` of it (where Linux says; elsewhere the stalls suffice): a
    stall while every member had its CPU is the machine's own hiccup (a virtual CPU paused by
    its host, say), not other work's."""
    if not os.path.exists("/proc/thread-self/schedstat"):
        CONTENTION.record(took_over)
        return
    share = TEAM_WAIT_SHARE if took_over else WAIT_SHARE
    CONTENTION.record(waited_ns > share * elapsed_ns)


def start_threading_layer() -> None:
    """Start Numba's threading layer, if no parallel call has yet (``get_num_threads`` starts
    it). A kernel loaded from Numba's cache that calls a ``parallel=True`` kernel jumps through
    the layer's entry points, which are null until it starts: called first in a process, it
    crashed (SIGSEGV) even where the parallel branch was not taken."""
    numba.get_num_threads()


def threads_for(requested: int | None) -> int:
    """Threads for a compiled call that asks for ``requested`` (None: ``default_threads``):
    one during a spell of contention."""
    n = default_threads() if requested is None else requested
    return 1 if n > 1 and CONTENTION.active() else n


def _cpu_wait_ns(task: str = "*") -> int:
    """Nanoseconds this process's threads (``task="*"``), or one of them (``"thread-self"``:
    the calling thread), have waited for a CPU in all (Linux's schedstat; 0 elsewhere)."""
    if task == "thread-self":
        paths = ["/proc/thread-self/schedstat"]
    else:
        try:
            paths = [f"/proc/self/task/{t}/schedstat" for t in os.listdir("/proc/self/task")]
        except OSError:
            return 0
    total = 0
    for path in paths:
        try:
            with open(path, "rb") as f:
                total += int(f.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # a thread that ended meanwhile, or no schedstat
    return total


def thread_cpu_wait_ns() -> int:
    """Nanoseconds the calling thread has waited for a CPU (Linux; 0 elsewhere)."""
    return _cpu_wait_ns("thread-self")


@contextmanager
def threads(requested: int | None, *, watch: bool = False) -> Iterator[int]:
    """Run the block on ``threads_for(requested)`` of Numba's threads, then restore Numba's
    count. With ``watch``, a block that runs on several threads and whose threads waited for
    a CPU for ``WAIT_SHARE`` of its time or more is recorded as contention."""
    n = threads_for(requested)
    with _layer_lock():
        yield from _on_threads(n, watch)


#: Serialises the compiled parallel calls where Numba's threading layer cannot take two at
#: once (``workqueue``, which aborts the process when called from two Python threads).
_WORKQUEUE_LOCK = threading.RLock()


def _layer_lock() -> Any:
    """``_WORKQUEUE_LOCK`` where the threading layer is ``workqueue`` or not yet chosen (the
    first parallel call chooses it), else a lock that does nothing (OpenMP and TBB are safe
    to call from several threads)."""
    try:
        layer = numba.threading_layer()
    except ValueError:  # not started yet
        layer = None
    return _WORKQUEUE_LOCK if layer in (None, "workqueue") else contextlib.nullcontext()


def _on_threads(n: int, watch: bool) -> Iterator[int]:
    saved = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    watched = watch and n > 1
    wait_before = _cpu_wait_ns() if watched else 0
    start = time.perf_counter_ns()
    try:
        yield n
    finally:
        numba.set_num_threads(saved)
    if watched:
        elapsed = time.perf_counter_ns() - start
        CONTENTION.record(_cpu_wait_ns() - wait_before > WAIT_SHARE * elapsed)
