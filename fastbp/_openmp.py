"""``GOMP_SPINCOUNT``, set when fastbp is imported: before Numba can load libgomp, which reads
it then (``import fastbp`` imports nothing else; see ``fastbp._threads``)."""

from __future__ import annotations

import os

#: How many times an idle worker of libgomp (the OpenMP runtime of Numba's default threading
#: layer) checks for work before it sleeps, unless the user set ``GOMP_SPINCOUNT`` or
#: ``OMP_WAIT_POLICY``: about 0.3 ms instead of libgomp's 300,000 (about 3 ms, up to 15). After
#: every parallel region (``predict``, the validation scores between epochs) its workers
#: would otherwise keep CPUs busy for milliseconds, which a team epoch that starts meanwhile
#: takes for other processes' work, and which other processes lose.
OPENMP_SPIN_COUNT = "30000"
if "GOMP_SPINCOUNT" not in os.environ and "OMP_WAIT_POLICY" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = OPENMP_SPIN_COUNT  # read when libgomp is loaded
