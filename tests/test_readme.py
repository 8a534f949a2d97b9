"""README.md's Python examples run as written, each on its own.

Every ```` ```python ```` block of README.md is executed by itself, in a namespace of its own
(so a block that uses a name it does not import or define fails with ``NameError``), in an
empty working directory, with pytest's warnings-as-errors. A block that cannot run here is
preceded by the line ``<!-- README test: not run (REASON) -->``, and the reason must be given;
README's "Development" section documents the marker.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"

#: The marker line before a block that is not run, with its reason.
SKIP = re.compile(r"<!-- README test: not run \((?P<reason>[^)]+)\) -->")
FENCE = re.compile(r"^```(\w*)\s*$")


def python_blocks(text: str) -> list[tuple[int, str, str | None]]:
    """``(line number of its first line, source, reason not to run it or None)`` of each
    python block."""
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        language, start = match.group(1), i + 1
        i = start
        while i < len(lines) and lines[i].rstrip() != "```":
            i += 1
        if language == "python":
            previous = next((line for line in reversed(lines[: start - 1]) if line.strip()), "")
            skip = SKIP.fullmatch(previous.strip())
            source = "\n".join(lines[start:i]) + "\n"
            blocks.append((start + 1, source, skip.group("reason") if skip else None))
        i += 1
    return blocks


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_has_python_blocks_and_runs_most_of_them():
    assert len(BLOCKS) >= 3
    assert sum(reason is None for _, _, reason in BLOCKS) >= len(BLOCKS) - 1


def test_the_block_parser_finds_blocks_and_their_markers():
    text = (
        "intro\n```python\nx = 1\n```\n\n<!-- README test: not run (needs a GPU) -->\n\n"
        "```python\ny = 2\n```\n```bash\nls\n```\n"
    )
    assert python_blocks(text) == [(3, "x = 1\n", None), (9, "y = 2\n", "needs a GPU")]


@pytest.mark.parametrize(
    "line, source, reason", BLOCKS, ids=[f"README.md:{line}" for line, _, _ in BLOCKS]
)
def test_readme_block_runs_on_its_own(line, source, reason, tmp_path, monkeypatch):
    if reason is not None:
        pytest.skip(f"README.md:{line}: {reason}")
    monkeypatch.chdir(tmp_path)
    code = compile(source, f"README.md:{line}", "exec")
    exec(code, {"__name__": "__readme__"})
