"""The core install runs analyze, demo and library; features that need an extra say how to install it.

The core is checked in a fresh interpreter in which the extras' packages cannot be imported (an
import hook refuses them), so nothing already imported by other tests can hide a dependency.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from moodscope.cli import main
from moodscope.extras import MissingExtraError, install_line, require

EXTRA_PACKAGES = ("sklearn", "librosa", "pyarrow", "scipy", "numba", "fastapi", "uvicorn")
"""Top-level packages that come only with extras (or with their dependencies)."""


def test_core_commands_run_without_any_extra(tmp_path, make_wav):
    song = make_wav("music/song.wav", 11.0, freqs=(220.0, 330.0))
    script = textwrap.dedent(
        f"""
        import sys

        BLOCKED = {EXTRA_PACKAGES!r}

        class Refuse:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"{{name}} is not part of the core install")

        sys.meta_path.insert(0, Refuse())
        from moodscope.cli import main
        from moodscope.models.checkpoint import save_random_checkpoint

        model = str(save_random_checkpoint({str(tmp_path / "tiny.pt")!r}))
        db = {str(tmp_path / "lib.db")!r}
        commands = [
            ["analyze", {str(song)!r}, "--model", model, "--format", "csv", "--out", {str(tmp_path / "a.csv")!r}],
            ["analyze", {str(song)!r}, "--model", model, "--format", "json", "--out", {str(tmp_path / "a.json")!r}],
            ["demo", "--model", model, "--plot", {str(tmp_path / "demo.png")!r}],
            ["library", "scan", {str(song.parent)!r}, "--db", db, "--model", model, "--workers", "1"],
            ["library", "list", "--db", db],
            ["library", "map", "--db", db, "--out", {str(tmp_path / "map.png")!r}],
            ["models", model],
        ]
        for argv in commands:
            status = main(argv)
            assert status == 0, (argv, status)
        assert not [m for m in sys.modules if m.split(".")[0] in BLOCKED]
        print("core OK")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "core OK" in done.stdout
    assert (tmp_path / "demo.png").stat().st_size > 0 and (tmp_path / "map.png").stat().st_size > 0


@pytest.fixture
def without(monkeypatch):
    """``without("pyarrow")`` makes ``import pyarrow`` (and its submodules) fail in this process."""

    def hide(*packages: str) -> None:
        for name in list(sys.modules):
            if name.split(".")[0] in packages:
                monkeypatch.setitem(sys.modules, name, None)
        for package in packages:
            monkeypatch.setitem(sys.modules, package, None)

    return hide


def test_require_names_the_extra_and_the_pip_line(without):
    without("sklearn")
    with pytest.raises(MissingExtraError, match=r"training needs .*'sklearn'.*pip install 'moodscope\[train\]'"):
        require("sklearn.linear_model", "train", "training")
    assert require("json", "train", "x").__name__ == "json"
    assert install_line("parquet") == "pip install 'moodscope[parquet]'"


def test_features_behind_extras_raise_with_the_install_line(without):
    from moodscope.analysis.accurate import fit_head
    from moodscope.features.extract import reference_segment_features

    without("sklearn", "librosa")
    blocks = {"paper": np.random.default_rng(0).normal(size=(8, 3))}
    with pytest.raises(MissingExtraError, match=r"moodscope\[train\]"):
        fit_head(blocks, np.arange(8) % 4, ("paper",), C=1.0)
    with pytest.raises(MissingExtraError, match=r"moodscope\[reference\]"):
        reference_segment_features(np.zeros(22_050 * 5, np.float32))


def test_parquet_without_pyarrow_fails_before_analysing(tmp_path, make_wav, without, capsys):
    song = make_wav("song.wav", 6.0)
    without("pyarrow")
    status = main(
        ["analyze", str(song), "--model", str(tmp_path / "no-model.pt"), "--out", str(tmp_path / "x.parquet")]
    )
    err = capsys.readouterr().err
    assert status == 1 and "pip install 'moodscope[parquet]'" in err and "no-model" not in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "x.parquet").exists()
