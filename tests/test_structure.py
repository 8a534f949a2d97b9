"""The code's promises about its own structure: Numba options live in one place."""

from __future__ import annotations

import ast
import inspect
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numba

import fastbp
from fastbp import _config, kernels

SOURCES = sorted(Path(fastbp.__file__).parent.rglob("*.py"))


def test_numba_options_are_set_only_in_config():
    pattern = re.compile(r"fastmath\s*=|\bnjit\b|\bnumba\.jit\b|@jit\b")
    offenders = [
        f"{path.name}:{n}"
        for path in SOURCES
        if path.name != "_config.py"
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if pattern.search(line)
    ]
    assert offenders == []


def test_fastmath_never_assumes_finite_values():
    assert not isinstance(_config.FASTMATH, bool) or _config.FASTMATH is False
    if _config.FASTMATH:
        assert not {"nnan", "ninf", "fast"} & set(_config.FASTMATH)


def test_every_kernel_is_compiled_with_the_config_options():
    dispatchers = [
        obj
        for _, obj in inspect.getmembers(kernels)
        if isinstance(obj, numba.core.registry.CPUDispatcher)
    ]
    assert len(dispatchers) >= 10
    for k in dispatchers:
        assert k.targetoptions["fastmath"] == _config.FASTMATH
        assert isinstance(k._cache, numba.core.caching.FunctionCache) == _config.CACHE
        assert k.targetoptions["error_model"] == "numpy"
        assert k.__doc__ and k.__doc__.strip(), f"{k.__name__} has no docstring"


def _imports(path: Path, package: Path) -> set[str]:
    """The fastbp modules a source file imports, at any depth (inside functions too), but for
    imports under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text())
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    here = parts if path.name == "__init__.py" else parts[:-1]
    skipped = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for stmt in block.body
        for node in ast.walk(stmt)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            module = [*base, *(node.module.split(".") if node.module else [])]
            if module[:1] != ["fastbp"]:
                continue
            for alias in node.names:  # ``from . import x`` imports the module x if it is one
                candidate = package.parent.joinpath(*module, alias.name)
                is_module = candidate.with_suffix(".py").exists() or candidate.is_dir()
                found.add(".".join([*module, alias.name] if is_module else module))
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "fastbp"}
    return found


def test_the_package_has_no_import_cycle():
    package = Path(fastbp.__file__).parent
    graph = {}
    for path in SOURCES:
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        graph[name] = _imports(path, package)
    assert graph["fastbp.network"] >= {"fastbp.training", "fastbp.kernels"}  # it sees imports
    cycles = []

    def visit(node, path):
        for nxt in sorted(graph.get(node, ())):
            if nxt in path:
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif len(path) < 30:
                visit(nxt, [*path, nxt])

    for name in graph:
        visit(name, [name])
    assert cycles == []


def test_editing_a_kernel_module_invalidates_the_kernels_that_depend_on_it(tmp_path):
    # Numba checks only a cached function's own file: forward.feedforward must still be
    # recompiled after an edit of activations.py, whose function it calls.
    copy = tmp_path / "src"
    shutil.copytree(Path(fastbp.__file__).parent, copy / "fastbp",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    child = (
        "import numpy as np\n"
        "from fastbp import Network, kernels\n"
        "net = Network([3, 2], activation=[], output='linear', seed=0, threads=1)\n"
        "out = net.feedforward(np.ones((1, 3)))\n"
        "stats = kernels.feedforward.stats\n"
        "print(out[0, 0], sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(copy), "NUMBA_CACHE_DIR": str(tmp_path / "cache"),
           "FASTBP_CACHE": "1"}  # fmt: skip

    def run():
        done = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True,
                              text=True, check=True, timeout=600, cwd=tmp_path)  # fmt: skip
        value, hits, misses = done.stdout.split()
        return float(value), int(hits), int(misses)

    first, hits, misses = run()
    assert (hits, misses) == (0, 1)  # compiled, and cached
    assert run() == (first, 1, 0)  # loaded from the cache
    activations = copy / "fastbp" / "kernels" / "activations.py"
    source = activations.read_text()
    linear = "    if kind == LINEAR:\n        return z, one\n"
    assert linear in source
    activations.write_text(source.replace(linear, linear.replace("z, one", "z + one, one")))
    edited, hits, misses = run()
    assert abs(edited - (first + 1)) < 1e-5 and (hits, misses) == (0, 1)  # recompiled, edited


def test_the_kernels_package_exports_every_kernel_of_its_modules():
    import pkgutil

    missing = [
        f"{info.name}.{name}"
        for info in pkgutil.iter_modules(kernels.__path__)
        for name, value in vars(__import__(f"fastbp.kernels.{info.name}", fromlist=["_"])).items()
        if not name.startswith("_")
        and getattr(value, "__module__", f"fastbp.kernels.{info.name}")
        == f"fastbp.kernels.{info.name}"
        and not inspect.ismodule(value)
        and name not in {"annotations", "NamedTuple"}
        and getattr(kernels, name, None) is not value
    ]
    assert missing == []
