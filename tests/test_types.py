"""The type annotations hold: mypy finds no error in ``src/`` (configuration in pyproject.toml).

CI also runs ``mypy`` on its own (``.ci/run``); this test makes every landing check it too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_mypy_finds_no_error_in_src():
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(REPO / ".mypy_cache")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]  # (mypy comes with the test extra)
