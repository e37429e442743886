"""`moodscope library tag`: mood tags written into every container and taken off again, other tags
and the audio untouched, safety checks, crash safety (kill -9) and scans that do not re-analyse."""

from __future__ import annotations

import hashlib
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import mutagen
import numpy as np
import pytest

from conftest import TAG_CONTAINERS, decode, write_audio
from moodscope.analysis.analyzer import Analysis, va_from_probabilities
from moodscope.cli import main
from moodscope.library import MoodLibrary
from moodscope.library.audiohash import audio_hash
from moodscope.library.tags import MOOD_TAGS, mood_tag_values, open_tagged, read_mood_tags


def fake_analyzer(paths):
    """A mood drawn from the file name (quick, deterministic; the real analysis is tested elsewhere)."""
    for p in paths:
        rng = np.random.default_rng(int.from_bytes(hashlib.sha256(Path(p).name.encode()).digest()[:4], "little"))
        probs = rng.dirichlet(np.full(4, 0.6), size=3)
        analysis = Analysis(str(p), 15.0, "fake", np.arange(3) * 5.0, probs, va_from_probabilities(probs))
        analysis.model_hash = "ab" * 32
        yield str(p), analysis, None


def add_other_tags(path: Path) -> None:
    """Title, artist, album, a comment, a picture and a custom tag in the container's own format."""
    from mutagen.flac import FLAC, Picture
    from mutagen.id3 import APIC, COMM, ID3, TALB, TIT2, TPE1, TXXX
    from mutagen.mp4 import MP4, MP4Cover, MP4FreeForm

    audio = mutagen.File(path)
    if audio.tags is None:
        audio.add_tags()
    tags = audio.tags
    if isinstance(tags, ID3):
        tags.add(TIT2(encoding=3, text=["Tïtle " + path.stem]))
        tags.add(TPE1(encoding=3, text=["An Artist"]))
        tags.add(TALB(encoding=3, text=["An Album"]))
        tags.add(COMM(encoding=3, lang="eng", desc="", text=["a comment"]))
        tags.add(TXXX(encoding=3, desc="OTHER", text=["kept"]))
        tags.add(APIC(encoding=3, mime="image/png", type=3, desc="cover", data=b"\x89PNG fake picture"))
    elif isinstance(audio, MP4):
        tags["\xa9nam"], tags["\xa9ART"], tags["\xa9alb"] = ["Tïtle " + path.stem], ["An Artist"], ["An Album"]
        tags["covr"] = [MP4Cover(b"\x89PNG fake picture", imageformat=MP4Cover.FORMAT_PNG)]
        tags["----:com.apple.iTunes:OTHER"] = [MP4FreeForm(b"kept")]
    else:
        tags["TITLE"], tags["ARTIST"], tags["ALBUM"] = ["Tïtle " + path.stem], ["An Artist"], ["An Album"]
        tags["OTHER"] = ["kept"]
        if isinstance(audio, FLAC):
            picture = Picture()
            picture.type, picture.mime, picture.data = 3, "image/png", b"\x89PNG fake picture"
            audio.add_picture(picture)
    audio.save()


def other_tags(path: Path) -> list:
    """Every tag of the file except moodscope's, in a comparable form (ID3 frames as written)."""
    from mutagen.flac import FLAC
    from mutagen.id3 import ID3
    from mutagen.mp4 import MP4

    audio = open_tagged(path)
    ours = {name.lower() for name in MOOD_TAGS}
    tags = audio.tags
    out: list = []
    if isinstance(tags, ID3):  # (the version is checked where it matters: an ID3v1-only file gains a v2 tag)
        frames = [
            (k, f._writeData()) for k, f in tags.items() if not (k.startswith("TXXX:") and f.desc.lower() in ours)
        ]
        out = sorted(frames)
    elif isinstance(audio, MP4):
        out = sorted((k, repr(v)) for k, v in tags.items() if k.split(":")[-1].lower() not in ours)
    elif tags is not None:
        out = [tags.vendor] + [(k, v) for k, v in tags if k.lower() not in ours]
    if isinstance(audio, FLAC):
        out += [p.write() for p in audio.pictures]
    return out


def snapshot(path: Path) -> dict:
    st = path.stat()
    return {
        "samples": decode(path),
        "audio_hash": audio_hash(path),
        "other": other_tags(path),
        "mood": read_mood_tags(open_tagged(path)),
        "mode": stat.S_IMODE(st.st_mode),
        "mtime": st.st_mtime_ns,
    }


def same_audio_and_other_tags(a: dict, b: dict) -> bool:
    return (
        a["audio_hash"] == b["audio_hash"] and np.array_equal(a["samples"], b["samples"]) and a["other"] == b["other"]
    )


@pytest.fixture
def music(tmp_path):
    folder = tmp_path / "music"
    for i, ext in enumerate(TAG_CONTAINERS):
        path = write_audio(folder / f"song{i}{ext}", freq=220.0 * (i + 1))
        add_other_tags(path)
        path.chmod(0o640)
    return folder


def scan(db: Path, folder: Path):
    with MoodLibrary(db) as lib:
        return lib.scan(folder, analyzer=fake_analyzer)


def test_tag_and_remove_round_trip_in_every_container(tmp_path, music, capsys):
    db = tmp_path / "lib.db"
    scan(db, music)
    files = sorted(music.iterdir())
    before = {p: snapshot(p) for p in files}
    assert all(s["mood"] == {} for s in before.values())

    assert main(["library", "tag", str(music), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert out.count("tagged ") == len(TAG_CONTAINERS) and "changed 7, 0 already current" in out
    with MoodLibrary(db) as lib:
        for path in files:
            after = snapshot(path)
            track = lib.track(str(path))
            assert after["mood"] == mood_tag_values(track), path
            assert after["mood"]["MOODSCOPE_MODEL"] == "fake@sha256:" + "ab" * 32
            assert same_audio_and_other_tags(before[path], after), path
            assert (after["mode"], after["mtime"]) == (before[path]["mode"], before[path]["mtime"])
    # what players read: the MOOD tag is there in each format
    assert mutagen.File(music / "song0.mp3")["TXXX:MOOD"].text[0] in ("happy", "tense", "sad", "calm")
    assert mutagen.File(music / "song1.flac")["MOOD"][0] == read_mood_tags(open_tagged(music / "song1.flac"))["MOOD"]
    m4a = mutagen.File(music / "song4.m4a")
    assert bytes(m4a["----:com.apple.iTunes:MOODSCOPE_QUADRANT"][0]).decode() in ("Q1", "Q2", "Q3", "Q4")

    again = scan(db, music)  # the library recorded the new files: nothing to analyse, nothing even hashed
    assert again.unchanged == len(files) and not (again.analysed or again.retagged or again.touched)
    assert main(["library", "tag", str(music), "--db", str(db)]) == 0
    assert "changed 0, 7 already current" in capsys.readouterr().out

    assert main(["library", "tag", "--remove", "--db", str(db)]) == 0
    assert "changed 7" in capsys.readouterr().out
    for path in files:
        after = snapshot(path)
        assert after["mood"] == {} and same_audio_and_other_tags(before[path], after), path
    assert scan(db, music).unchanged == len(files)


def test_id3v23_and_id3v1_tags_are_kept_as_they_are(tmp_path):
    from mutagen.id3 import ID3, TIT2, TYER

    music = tmp_path / "music"
    path = write_audio(music / "old.mp3")
    tags = ID3()
    tags.add(TIT2(encoding=1, text=["Old tagger"]))
    tags.add(TYER(encoding=0, text=["1999"]))
    tags.save(path, v2_version=3, v1=2)  # ID3v2.3 with a year frame, and an ID3v1 tag
    v1 = path.read_bytes()[-128:]
    assert v1[:3] == b"TAG"
    before = snapshot(path)
    scan(tmp_path / "lib.db", music)
    with MoodLibrary(tmp_path / "lib.db") as lib:
        result = lib.tag()
    assert [c.status for c in result.files] == ["written"]
    after = ID3(path, translate=False)
    assert after.version == (2, 3, 0) and after["TYER"].text == ["1999"] and "TDRC" not in after
    assert after["TXXX:MOOD"].text[0] == read_mood_tags(open_tagged(path))["MOOD"]
    assert path.read_bytes()[-128:] == v1
    assert same_audio_and_other_tags(before, snapshot(path))


def test_dry_run_skips_and_another_tools_mood(tmp_path, capsys):
    music = tmp_path / "music"
    analysed = write_audio(music / "analysed.flac")
    audio = mutagen.File(analysed)
    audio["MOOD"] = ["Chill"]  # written by another tool
    audio.save()
    changed = write_audio(music / "changed.ogg")
    db = tmp_path / "lib.db"
    scan(db, music)
    new = write_audio(music / "new.mp3")  # never analysed
    write_audio(changed, freq=1234.0)  # other audio since the analysis
    (music / "notes.aac").write_bytes(b"\xff\xf1 not really")
    raw = {p: p.read_bytes() for p in music.iterdir()}

    assert main(["library", "tag", str(music), str(tmp_path / "nowhere"), "--dry-run", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert {p: p.read_bytes() for p in music.iterdir()} == raw  # a dry run changes nothing
    assert f"would tag {analysed}" in out and "    MOOD: Chill -> " in out and "MOODSCOPE_QUADRANT: (none) -> Q" in out
    assert f"skipped {new}: not in the library" in out
    assert f"skipped {changed}: its audio changed since it was analysed" in out
    assert f"skipped {tmp_path / 'nowhere'}: no such file or folder" in out
    assert "would change 1, 0 already current, 4 skipped" in out  # notes.aac: not in the library

    with MoodLibrary(db) as lib:
        lib.tag(analysed)
        assert read_mood_tags(open_tagged(analysed))["MOOD"] != "Chill"
        lib.tag(analysed, remove=True)
        assert read_mood_tags(open_tagged(analysed)) == {}
        # --remove leaves a MOOD that moodscope did not write
        audio = mutagen.File(analysed)
        audio["MOOD"] = ["Chill"]
        audio.save()
        result = lib.tag(analysed, remove=True)
        assert result.files[0].status == "current" and read_mood_tags(open_tagged(analysed)) == {"MOOD": "Chill"}


def test_touch_symlinks_read_only_and_files_retagged_by_others(tmp_path):
    music = tmp_path / "music"
    a, b, c, d = (write_audio(music / f"{n}.opus", freq=f) for n, f in (("a", 300), ("b", 400), ("c", 500), ("d", 600)))
    db = tmp_path / "lib.db"
    scan(db, music)
    link = tmp_path / "elsewhere" / "link.opus"
    link.parent.mkdir()
    link.symlink_to(b)
    c.chmod(0o444)
    audio = mutagen.File(d)
    audio["TITLE"] = ["Retagged by another tool"]  # the whole-file hash changes, the audio does not
    audio.save()
    mtime_a = a.stat().st_mtime_ns
    time.sleep(0.01)
    with MoodLibrary(db) as lib:
        assert lib.tag(a, touch=True).files[0].status == "written"
        assert a.stat().st_mtime_ns > mtime_a
        # the link in the library: its target gets the tags, the link stays a link
        lib.conn.execute("UPDATE tracks SET path = ? WHERE path = ?", (str(link), str(b)))
        assert lib.tag(link).files[0].status == "written"
        assert link.is_symlink() and read_mood_tags(open_tagged(b))["MOODSCOPE_QUADRANT"].startswith("Q")
        result = lib.tag(c)
        assert result.files[0].status == "skipped" and "read-only" in result.files[0].reason
        assert lib.tag(d).files[0].status == "written"
        assert mutagen.File(d)["TITLE"] == ["Retagged by another tool"]
    assert list(music.glob(".*")) == [] and list(link.parent.glob(".*")) == []  # no temporary copy left


def make_batch(folder: Path, n: int) -> list[Path]:
    files = []
    for i in range(n):
        ext = TAG_CONTAINERS[i % len(TAG_CONTAINERS)]
        path = write_audio(folder / f"t{i:02d}{ext}", seconds=4.0, freq=200.0 + 10 * i, seed=i)
        add_other_tags(path)
        files.append(path)
    return files


def test_kill_9_during_tagging_leaves_every_file_fully_old_or_fully_new(tmp_path):
    music = tmp_path / "music"
    files = make_batch(music, 60)
    db = tmp_path / "lib.db"
    scan(db, music)
    before = {p: snapshot(p) for p in files}
    inodes = {p: p.stat().st_ino for p in files}  # a file replaced by its tagged copy gets a new inode
    with MoodLibrary(db) as lib:
        wanted = {p: mood_tag_values(lib.track(str(p))) for p in files}

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moodscope", "library", "tag", str(music), "--db", str(db)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if sum(p.stat().st_ino != inodes[p] for p in files) >= 15:
            break
        time.sleep(0.002)
    assert proc.poll() is None, "tagging finished before it could be killed: use more or larger files"
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    old = new = 0
    for path in files:
        now = snapshot(path)
        assert same_audio_and_other_tags(before[path], now), path
        if now["mood"] == {}:
            old += 1
        else:
            assert now["mood"] == wanted[path], path  # all of moodscope's tags, with their values
            new += 1
    assert old + new == 60 and new >= 15 and old >= 1

    assert main(["library", "tag", str(music), "--db", str(db)]) == 0  # the next run finishes the job
    assert all(read_mood_tags(open_tagged(p)) == wanted[p] for p in files)
    assert sorted(p.name for p in music.iterdir()) == sorted(p.name for p in files)  # leftovers removed
    result = scan(db, music)  # the second run recorded the files that the killed one renamed but did not commit
    assert result.unchanged == 60 and not (result.analysed or result.retagged)


@pytest.mark.parametrize(
    "parts",
    [("music", "March Thee to Dis.ogg"), ("music", "machine_wars.mp3"), ("deam", "MEMD_audio", "2.mp3")],
)
def test_round_trip_on_real_files(tmp_path, parts):
    import shutil

    from conftest import shared_data

    source = shared_data(*parts)
    music = tmp_path / "music"
    music.mkdir()
    path = Path(shutil.copy(source, music / source.name))
    path.chmod(0o644)  # the shared data is read-only, and read-only files are skipped
    db = tmp_path / "lib.db"
    scan(db, music)
    before = snapshot(path)
    with MoodLibrary(db) as lib:
        assert [c.status for c in lib.tag(music).files] == ["written"]
        assert read_mood_tags(open_tagged(path)) == mood_tag_values(lib.track(str(path)))
        assert same_audio_and_other_tags(before, snapshot(path))
        assert [c.status for c in lib.tag(music, remove=True).files] == ["written"]
    after = snapshot(path)
    assert after["mood"] == {} and same_audio_and_other_tags(before, after)
