"""Every ```python block of README.md runs as written, from the repository root, in a fresh
interpreter: the blocks are found when the test runs, so a section added later is covered too."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


def _collect(text):
    """``[(line number, code)]`` of every fenced block whose info string is python (or py)."""
    out, inside, kind, first, body = [], False, "", 0, []
    for number, line in enumerate(text.splitlines(), start=1):
        fence = re.match(r"^\s*```\s*(\S*)", line)
        if fence and not inside:
            inside, kind, first, body = True, fence.group(1).lower(), number, []
        elif fence and inside:
            if kind in ("python", "py", "python3"):
                out.append((first, "\n".join(body)))
            inside = False
        elif inside:
            body.append(line)
    return out


BLOCKS = _collect(README.read_text(encoding="utf-8"))


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 4
    assert _collect("x\n```python\na = 1\n```\n```bash\nls\n```\n```py\nb = 2\n```\n") == \
        [(2, "a = 1"), (8, "b = 2")]


@pytest.mark.parametrize("line, code", BLOCKS, ids=[f"README.md:{n}" for n, _ in BLOCKS])
def test_block_runs_as_written(line, code):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(REPO)                 # the repository root, as a user standing in it
    env.setdefault("NUMBA_ENABLE_CUDASIM", "1")
    before = set(os.listdir(REPO))
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=180)
    assert r.returncode == 0, f"README.md block at line {line} failed:\n{r.stderr[-3000:]}"
    leftovers = sorted(set(os.listdir(REPO)) - before)
    assert not leftovers, f"README.md block at line {line} left {leftovers} in the repository root"

