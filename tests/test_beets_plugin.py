"""The beets plugin on a real beets library in a temporary folder (its own BEETSDIR and HOME) with
real clips: analysis on import, flexible attributes and queries, reuse of moodscope's library, tags
written by beets that a later moodscope scan recognises."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import shared_data
from moodscope.cli import main
from moodscope.library import MoodLibrary
from moodscope.library.audiohash import audio_hash
from moodscope.library.tags import mood_tag_values, open_tagged, read_mood_tags

FORMAT = "$path|$mood|$mood_quadrant|$valence|$arousal|$mood_confidence|$mood_model"


@pytest.fixture(scope="module")
def random_model(tmp_path_factory) -> Path:
    from moodscope.models.checkpoint import save_random_checkpoint

    return save_random_checkpoint(tmp_path_factory.mktemp("model") / "random.pt")


@pytest.fixture
def clips(tmp_path) -> list[Path]:
    """One real 4Q clip of each quadrant, copied to a temporary folder."""
    root = shared_data("4q", "MER_audio_taffc_dataset")
    folder = tmp_path / "incoming"
    folder.mkdir()
    return [Path(shutil.copy(sorted((root / q).glob("*.mp3"))[0], folder)) for q in ("Q1", "Q2", "Q3", "Q4")]


def beets_runner(tmp_path: Path, model: Path, *, write: bool = False, copy: bool = False):
    """Run ``beet`` with a fresh configuration and library in ``tmp_path`` (``import.write`` and
    ``import.copy`` as given); the function returned gives its stdout."""
    beetsdir = tmp_path / "beetsdir"
    beetsdir.mkdir()
    (tmp_path / "home").mkdir()
    yes_no = {True: "yes", False: "no"}
    (beetsdir / "config.yaml").write_text(
        f"""
directory: {tmp_path / "beets-music"}
library: {tmp_path / "beets.db"}
plugins: [moodscope]
import:
    copy: {yes_no[copy]}
    write: {yes_no[write]}
    quiet: yes
    autotag: no
moodscope:
    auto: yes
    library: {tmp_path / "moodscope.db"}
    model: {model}
    workers: 1
"""
    )
    env = dict(os.environ, BEETSDIR=str(beetsdir), HOME=str(tmp_path / "home"))
    env.pop("MOODSCOPE_LIBRARY", None)

    def run(*args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "beets", *args], capture_output=True, text=True, env=env, timeout=600, check=False
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    return run


@pytest.fixture
def beet(tmp_path, random_model):
    """``beet`` on a fresh library, importing in place without writing tags."""
    return beets_runner(tmp_path, random_model)


def listed(output: str) -> dict[str, list[str]]:
    return {line.split("|")[0]: line.split("|")[1:] for line in output.splitlines() if line.strip()}


def test_import_analyses_and_queries_work(tmp_path, clips, beet):
    beet("import", "-A", str(clips[0].parent))
    items = listed(beet("ls", "-f", FORMAT))
    assert sorted(items) == sorted(str(c) for c in clips)
    with MoodLibrary(tmp_path / "moodscope.db") as library:  # analysed through moodscope's library
        tracks = library.tracks_at(clips)
    assert len(tracks) == 4
    for path, (mood, quadrant, valence, arousal, confidence, model) in items.items():
        values = mood_tag_values(tracks[path])
        assert (mood, quadrant, model) == (values["MOOD"], values["MOODSCOPE_QUADRANT"], values["MOODSCOPE_MODEL"])
        for shown, value in ((valence, tracks[path].valence), (arousal, tracks[path].arousal),
                             (confidence, tracks[path].confidence)):  # fmt: skip
            assert float(shown) == pytest.approx(value, abs=1e-4)
    assert all(read_mood_tags(open_tagged(c)) == {} for c in clips)  # import.write is off: files untouched

    mood = items[str(clips[0])][0]
    found = set(beet("ls", "-f", "$path", f"mood:{mood}").split())
    assert found == {p for p, v in items.items() if v[0] == mood} and str(clips[0]) in found
    valences = {p: float(v[2]) for p, v in items.items()}
    threshold = sorted(valences.values())[2]
    found = set(beet("ls", "-f", "$path", f"valence:{threshold}..").split())  # a numeric range, not text
    assert found == {p for p, v in valences.items() if v >= threshold} and 1 <= len(found) <= 3


def test_command_reuses_moodscope_library_and_writes_tags(tmp_path, clips, beet, random_model, capsys):
    db = tmp_path / "moodscope.db"
    assert main(["library", "scan", str(clips[0].parent), "--db", str(db), "--model", str(random_model)]) == 0
    with MoodLibrary(db) as library:
        analysed_at = dict(library.conn.execute("SELECT path, scanned_at FROM tracks"))
        tracks = library.tracks_at(clips)

    beet("import", "-A", str(clips[0].parent))  # auto: every clip is in moodscope's library already
    out = beet("moodscope", "-w")
    assert "4 tracks: 0 analysed, 4 from the moodscope library, 0 failed" in out
    with MoodLibrary(db) as library:
        assert dict(library.conn.execute("SELECT path, scanned_at FROM tracks")) == analysed_at  # nothing re-analysed
    for clip in clips:  # beets wrote the same tags as `moodscope library tag` would
        assert read_mood_tags(open_tagged(clip)) == mood_tag_values(tracks[str(clip)])
    assert set(beet("ls", "-f", "$path", f"mood_quadrant:{tracks[str(clips[1])].quadrant}").split()) >= {str(clips[1])}

    capsys.readouterr()
    assert main(["library", "scan", str(clips[0].parent), "--db", str(db)]) == 0  # beets changed the files
    out = capsys.readouterr().out
    assert "0 analysed" in out and "4 retagged" in out


def test_auto_on_import_with_import_write_tags_the_imported_copies(tmp_path, clips, random_model, capsys):
    """``import.write: yes`` with ``import.copy: yes``, imported as is (no autotagging, which is when
    beets itself writes no tags): the copies in beets' folder carry the mood tags, the originals stay
    untouched, and moodscope recognises the copies as the audio it analysed."""
    beet = beets_runner(tmp_path, random_model, write=True, copy=True)
    before = {clip: clip.read_bytes() for clip in clips}
    beet("import", "-A", str(clips[0].parent))
    items = listed(beet("ls", "-f", FORMAT))
    copies = sorted(Path(p) for p in items)
    assert len(copies) == 4 and all(tmp_path / "beets-music" in c.parents for c in copies)
    assert all(clip.read_bytes() == data for clip, data in before.items())  # the sources are not written
    with MoodLibrary(tmp_path / "moodscope.db") as library:  # analysed at their original paths
        tracks = library.tracks_at(clips)
    by_audio = {audio_hash(path): track for path, track in tracks.items()}  # beets renamed the copies
    assert len(by_audio) == 4
    for copy in copies:
        tags = read_mood_tags(open_tagged(copy))
        assert tags == mood_tag_values(by_audio[audio_hash(copy)]), copy
        assert items[str(copy)][:2] == [tags["MOOD"], tags["MOODSCOPE_QUADRANT"]]

    capsys.readouterr()  # the tagged copies hold the audio moodscope analysed: no new analysis
    assert main(["library", "scan", str(tmp_path / "beets-music"), "--db", str(tmp_path / "moodscope.db")]) == 0
    assert ": 0 analysed" in capsys.readouterr().out
