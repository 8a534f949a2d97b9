"""What a new user meets first: ``import fastbp``, ``fastbp info``, the cache, the advice.

Import and ``fastbp info`` run in fresh processes (a module imported by another test would
hide an eager import); each takes about a second.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fastbp import _cache, cli

ROOT = Path(__file__).resolve().parent.parent


def child(code: str, tmp_path: Path, **env: str) -> str:
    """Run ``code`` in a fresh Python with this checkout's fastbp; its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def test_import_fastbp_imports_no_kernel_and_no_numba(tmp_path):
    out = child(
        """
        import json, sys
        import fastbp
        before = sorted(m for m in sys.modules if m.startswith(("fastbp.", "numba")))
        from fastbp import Network, gates
        after = "fastbp.kernels" in sys.modules
        print(json.dumps([before, after, Network.__name__, gates.__name__, fastbp.__version__]))
        """,
        tmp_path,
    )
    before, after, network, gates, version = json.loads(out)
    assert before == ["fastbp._openmp", "fastbp._version"]  # GOMP_SPINCOUNT, the version
    assert after  # the names still work, imported on first use
    assert (network, gates) == ("Network", "fastbp.gates")
    assert version == __import__("fastbp").__version__


def test_every_public_name_of_fastbp_resolves():
    import fastbp

    for name in fastbp.__all__:
        assert getattr(fastbp, name) is not None
    assert set(fastbp.__all__) <= set(dir(fastbp))
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        fastbp.nothing  # noqa: B018


def test_fastbp_info_compiles_nothing(tmp_path):
    # A fresh, empty Numba cache: a compiled kernel would be written there, and Numba reports
    # every compilation as a "numba:compile" event.
    cache = tmp_path / "cache"
    out = child(
        """
        import contextlib, io, json
        import numba.core.event as ev
        listener = ev.RecordingListener()
        ev.register("numba:compile", listener)
        from fastbp.cli import main
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            status = main(["info"])
        print(json.dumps([status, len(listener.buffer), text.getvalue()]))
        """,
        tmp_path,
        NUMBA_CACHE_DIR=str(cache),
    )
    status, events, text = json.loads(out)
    assert status == 0
    assert events == 0
    assert not cache.exists() or not any(cache.rglob("*.nbi"))
    assert f"Numba cache:     {cache} (NUMBA_CACHE_DIR)" in text
    assert "threading layer:" in text


def test_kernels_are_cached_outside_the_package_unless_numba_cache_dir_says(monkeypatch, tmp_path):
    from numba.core import config

    from fastbp import kernels

    py_file = kernels.forward.__file__
    monkeypatch.setattr(config, "CACHE_DIR", "")
    monkeypatch.setattr(_cache, "CACHE_ROOT", tmp_path / "fastbp" / "numba")
    locator = _cache.KernelCacheLocator.from_function(kernels.forward.argmax_rows.py_func, py_file)
    assert isinstance(locator._inner, _cache.UserCacheLocator)
    path = Path(locator.get_cache_path())
    assert path.parent == _cache.CACHE_ROOT and path.is_dir()
    assert Path(py_file).parent not in path.parents  # a reinstall does not remove it
    assert locator.get_source_stamp() == _cache.STAMP
    assert locator._py_file == py_file  # Numba's attributes reach the inner locator
    # Where that directory cannot be written, Numba's own locators decide.
    monkeypatch.setattr(_cache, "CACHE_ROOT", Path("/proc/no-such-directory"))
    locator = _cache.KernelCacheLocator.from_function(kernels.forward.argmax_rows.py_func, py_file)
    assert not isinstance(locator._inner, _cache.UserCacheLocator)
    assert locator.get_source_stamp() == _cache.STAMP
    # NUMBA_CACHE_DIR wins.
    monkeypatch.setattr(config, "CACHE_DIR", str(tmp_path / "numba-cache-dir"))
    locator = _cache.KernelCacheLocator.from_function(kernels.forward.argmax_rows.py_func, py_file)
    assert Path(locator.get_cache_path()).parent == tmp_path / "numba-cache-dir"


def test_the_cache_root_follows_xdg_cache_home(monkeypatch, tmp_path):
    from fastbp._paths import user_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert user_cache("numba", windows=False) == tmp_path / "fastbp" / "numba"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")  # ignored, as the specification says
    assert user_cache("numba", windows=False) == Path.home() / ".cache" / "fastbp" / "numba"


def test_missing_mnist_advice_names_the_command_line_options(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("FASTBP_DATA", str(tmp_path / "nothing"))
    status = cli.main(["train", "--data", "mnist"])
    err = capsys.readouterr().err
    assert status == cli.EXIT_ERROR
    assert len(err.strip().splitlines()) == 1
    for advice in ("--data-dir", "FASTBP_DATA", "--download", "--data mini"):
        assert advice in err
    assert "load_mnist(path=" not in err  # the Python API's advice


def test_vanishing_example_checks_matplotlib_before_training(tmp_path):
    # With matplotlib hidden, --plot must fail at once: no data is read (the directory
    # does not exist), nothing is trained.
    code = """
        import runpy, sys
        sys.modules["matplotlib"] = None
        sys.argv = ["vanishing.py", "--plot", "norms.png", "--data", "no-such-directory"]
        runpy.run_path(sys.argv[0], run_name="__main__")
    """
    script = ROOT / "examples" / "vanishing.py"
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code).replace("sys.argv[0]", repr(str(script)))],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "--plot needs matplotlib" in done.stderr
    assert "fastbp[plot]" in done.stderr
    assert "MNIST" not in done.stderr  # it stopped before looking for the data
