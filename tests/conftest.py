from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data; skips the test with a reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (clone the project beside ../shared)")
    return path


def without_root_override() -> list[str]:
    """A command prefix under which read-only files and folders are read-only to the command.

    Root ignores file permissions: as root, ``setpriv`` drops that override (CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH) for the command; as another user nothing is needed. Skips the test when
    running as root without ``setpriv``.
    """
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: a read-only file cannot be made read-only to the test")
    drop = "-dac_override,-dac_read_search"
    return ["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}"]


@pytest.fixture
def make_wav(tmp_path):
    """Write a test WAV: a sum of sines (Hz) with some noise, mono or multichannel."""

    def make(name: str, seconds: float, *, sr: int = 22_050, freqs=(440.0,), channels: int = 1, seed: int = 0) -> Path:
        rng = np.random.default_rng(seed)
        t = np.arange(int(seconds * sr)) / sr
        y = sum(np.sin(2 * np.pi * f * t) for f in freqs) / max(1, len(freqs)) * 0.5
        y = y + 0.01 * rng.standard_normal(len(t))
        data = np.repeat(y[:, None], channels, axis=1) if channels > 1 else y
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, data.astype(np.float32), sr)
        return path

    return make
