from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import soundfile as sf

PROJECT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT.parent / "shared" / "data"


def load_script(relative: str) -> ModuleType:
    """The project's script at ``relative`` (e.g. 'scripts/levers.py') as a module, importable by its
    name (dataclasses look their module up) and able to import its siblings."""
    path = PROJECT / relative
    name = f"{path.parent.name}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data; skips the test with a reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (clone the project beside ../shared)")
    return path


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Caches the tests' libraries leave (remembered integrity checks) go to a temporary folder, not ~/.cache."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


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


TAG_CONTAINERS = (".mp3", ".flac", ".ogg", ".opus", ".m4a", ".wav", ".aiff")
"""Containers moodscope writes its tags into; :func:`write_audio` makes a file of each."""


def write_audio(path: Path, seconds: float = 2.0, *, freq: float = 440.0, seed: int = 0) -> Path:
    """A short stereo tone with noise in the container of ``path``'s suffix: .mp3 (MPEG layer III),
    .flac, .ogg (Vorbis), .opus, .wav, .aiff (libsndfile) or .m4a (AAC in MP4, PyAV)."""
    sr = 48_000 if path.suffix == ".opus" else 44_100
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(len(t))
    data = np.stack([y, 0.8 * y], axis=1).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".m4a":
        import av

        with av.open(str(path), "w", format="mp4") as container:
            stream = container.add_stream("aac", rate=sr, layout="stereo")
            for start in range(0, len(data), 1024):
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(data[start : start + 1024].T), format="fltp", layout="stereo"
                )
                frame.sample_rate, frame.pts = sr, start
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        return path
    formats = {".mp3": ("MP3", "MPEG_LAYER_III"), ".ogg": ("OGG", "VORBIS"), ".opus": ("OGG", "OPUS")}
    fmt, subtype = formats.get(path.suffix, (None, None))
    sf.write(path, data, sr, format=fmt, subtype=subtype)
    return path


def decode(path: Path) -> np.ndarray:
    """Every decoded sample of ``path`` [shape=(channels, n)], with PyAV (exact: no resampling)."""
    import av

    with av.open(str(path)) as container:
        frames = [f.to_ndarray() for f in container.decode(audio=0)]
    planes = [f if f.ndim == 2 and f.shape[0] <= 8 else f.reshape(1, -1) for f in frames]
    return np.concatenate(planes, axis=1)


def fresh_python(code: str, *args: str, timeout: float = 120) -> str:
    """Run ``code`` in a new Python process (what a user's first import or command sees, no module
    already imported by the tests) and return its standard output; fails the test on a non-zero exit."""
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done.stdout
