"""What every benchmark records beside its figures: the machine, the load and the command."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path


def save_report(path: Path, report: dict, argv: list[str] | None) -> None:
    """Write ``report`` as JSON with the machine and the command line that produced it."""
    report = report | {
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1))
