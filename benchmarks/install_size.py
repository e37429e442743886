"""Size of the core install of one or more checkouts: a fresh venv, the pinned CPU torch, then the checkout.

For each checkout (a folder holding its ``pyproject.toml``): ``python -m venv``, ``pip install
torch==2.13.0`` first (as the README and ``.ci/run`` do; an open range would pull a CUDA build), the
size of ``site-packages`` then, ``pip install CHECKOUT`` (no extras: the core), and the size again.
Reported: both sizes in bytes, what the checkout added, the packages installed, and whether the
package ships ``py.typed``::

    git worktree add --detach /tmp/before <commit-before>
    python benchmarks/install_size.py /tmp/before . --json install-size.json
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from common import save_report

TORCH = "torch==2.13.0"


def tree_bytes(folder: Path) -> int:
    """Apparent size of everything under ``folder`` (``du -sb``: files, links and folders)."""
    return int(subprocess.run(["du", "-sb", str(folder)], check=True, capture_output=True, text=True).stdout.split()[0])


def core_install(checkout: Path, scratch: Path) -> dict:
    venv = scratch / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, TORCH], check=True)
    purelib = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    torch_only = tree_bytes(purelib)
    subprocess.run([*pip, str(checkout)], check=True)
    total = tree_bytes(purelib)
    listed = subprocess.run([python, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True)
    packages = sorted(line for line in listed.stdout.splitlines() if line and not line.startswith("pip=="))
    return {
        "site_packages_bytes": total,
        "torch_only_bytes": torch_only,
        "added_bytes": total - torch_only,
        "packages": packages,
        "py_typed": (purelib / "moodscope" / "py.typed").is_file(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkouts", type=Path, nargs="+", help="folders holding a pyproject.toml (first: the base)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    figures = {}
    for checkout in args.checkouts:
        with tempfile.TemporaryDirectory(prefix="moodscope-install-") as scratch:
            figures[str(checkout)] = core_install(checkout.resolve(), Path(scratch))
    base = figures[str(args.checkouts[0])]["site_packages_bytes"]
    print(f"{'checkout':30s} {'site-packages MB':>16s} {'torch alone MB':>14s} {'packages':>8s} {'ratio':>6s}")
    for name, f in figures.items():
        print(
            f"{name[-30:]:30s} {f['site_packages_bytes'] / 1e6:16.0f} {f['torch_only_bytes'] / 1e6:14.0f} "
            f"{len(f['packages']):8d} {f['site_packages_bytes'] / base:6.2f}"
        )
    if args.json:
        save_report(args.json, {"torch": TORCH, "checkouts": figures}, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
