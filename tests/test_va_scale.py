"""Valence and arousal on the 0-1 probability scale: the library's migration of older libraries, the
maps (colour agrees with position), the mood points of queries, and the CLI's outputs."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from moodscope.analysis.analyzer import Analysis, va_from_probabilities
from moodscope.cli import main
from moodscope.constants import QUADRANT_COLOURS, QUADRANTS, VA_MIDPOINT, VA_RANGE
from moodscope.datasets.labels import reported_quadrant
from moodscope.library import MoodLibrary
from moodscope.library.db import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, Track, _statements
from moodscope.library.mapplot import map_figure, map_html, map_quadrants
from moodscope.library.profile import STD, VA, profile_vector
from test_analyze_cli import write_audio

OLD_CENTRES = np.array([(0.5, 0.5), (-0.5, 0.5), (-0.5, -0.5), (0.5, -0.5)])
"""The quadrant centres schema 5 and earlier mixed valence/arousal from (Q1..Q4, on [-1, 1])."""


def _old_library(path, tracks: list[tuple[str, np.ndarray, np.ndarray]]) -> None:
    """A library as moodscope wrote it at schema 5: ``tracks`` are (name, segment probabilities, segment
    valence/arousal on the old scale); summaries and profiles as that version stored them."""
    conn = sqlite3.connect(path)
    for migration in MIGRATIONS[:5]:
        for statement in _statements(migration):
            conn.execute(statement)
    for name, probs, va in tracks:
        song = probs.mean(axis=0)
        share = np.bincount(probs.argmax(axis=1), minlength=4) / len(probs)
        values = dict(
            path=f"/music/{name}.wav", size=100, mtime_ns=1, hash=name, title=name, analysed_seconds=5.0 * len(probs),
            model="old", n_segments=len(probs), quadrant=QUADRANTS[int(song.argmax())], confidence=round(song.max(), 4),
            valence=round(va[:, 0].mean(), 4), arousal=round(va[:, 1].mean(), 4),
            **{f"p_{q.lower()}": round(p, 4) for q, p in zip(QUADRANTS, song)},
            **{f"share_{q.lower()}": s for q, s in zip(QUADRANTS, share)},
            profile=profile_vector(probs, va).tobytes(), scanned_at=time.time(),
        )  # fmt: skip
        cur = conn.execute(
            f"INSERT INTO tracks ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})", list(values.values())
        )
        conn.executemany(
            "INSERT INTO segments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(cur.lastrowid, i, 5.0 * i, *map(float, p), *map(float, x)) for i, (p, x) in enumerate(zip(probs, va))],
        )
    conn.execute("INSERT INTO profile_snapshot VALUES (1, 0, 0, x'')")
    conn.execute("PRAGMA user_version = 5")
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.commit()
    conn.close()


def test_a_library_of_schema_5_is_migrated_to_the_probability_scale(tmp_path):
    rng = np.random.default_rng(3)
    classified = [rng.dirichlet(np.full(4, 0.7), size=k) for k in (3, 5, 1)]
    regressed = np.array([[0.6, -0.4], [0.2, -0.8]])  # a `va` checkpoint's outputs, on the [-1, 1] annotation scale
    reg_probs = np.full((2, 4), 0.25)
    db = tmp_path / "old.db"
    _old_library(
        db,
        [(f"c{i}", p, p @ OLD_CENTRES) for i, p in enumerate(classified)] + [("regressed", reg_probs, regressed)],
    )
    assert sqlite3.connect(db).execute("SELECT min(valence) FROM segments").fetchone()[0] < 0  # the old scale
    with MoodLibrary(db, create=False) as lib:
        assert lib.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        for i, probs in enumerate(classified):
            t = lib.track(f"c{i}")
            song = probs.mean(axis=0)
            assert t.valence == pytest.approx(song[0] + song[3], abs=1e-4)  # marginals of the stored probabilities
            assert t.arousal == pytest.approx(song[0] + song[1], abs=1e-4)
            timeline = lib.timeline(t.id)
            assert np.allclose(timeline[["valence", "arousal"]].to_numpy(), va_from_probabilities(probs))
        t = lib.track("regressed")
        assert np.allclose(lib.timeline(t.id)[["valence", "arousal"]].to_numpy(), (regressed + 1) / 2)
        assert (t.valence, t.arousal) == pytest.approx(tuple((regressed.mean(axis=0) + 1) / 2), abs=1e-4)
        profiles = lib.profiles()  # rebuilt from the migrated segments, as a new analysis would store them
        ids = {lib.track(f"c{i}").id: probs for i, probs in enumerate(classified)}
        for row, track_id in enumerate(profiles.ids):
            if int(track_id) in ids:
                probs = ids[int(track_id)]
                expected = profile_vector(probs, va_from_probabilities(probs))
                assert np.allclose(profiles.matrix[row], expected, atol=1e-6)
                assert np.allclose(profiles.matrix[row, VA], va_from_probabilities(probs).mean(axis=0), atol=1e-6)
        assert np.allclose(profiles.matrix[profiles.ids == t.id][0, STD], regressed.std(axis=0) / 2, atol=1e-6)
        assert lib.check() == []  # every stored value within its range
        # queries on the new scale find them: the point nearest to (0.8, 0.1) is the regressed track's
        assert [x.title for x in lib.tracks("0.8,0.1", limit=1)] == ["regressed"]
    assert main(["library", "check", "--db", str(db)]) == 0


def _track(i: int, v: float, a: float, quadrant: str) -> Track:
    probs = {q: 0.25 for q in QUADRANTS}
    return Track(i, f"/m/{i}.wav", f"t{i}", None, None, 60.0, quadrant, 0.5, v, a, probs, probs, "m")


# points in every quadrant, on the boundaries, in the corners; the labels deliberately disagree with
# the positions for some (a model whose argmax and marginals differ): colour must follow the position
POINTS = [(0.9, 0.8, "Q1"), (0.2, 0.7, "Q1"), (0.1, 0.1, "Q3"), (0.7, 0.3, "Q2"), (0.5, 0.5, "Q3"),
          (0.49, 0.51, "Q2"), (0.0, 1.0, "Q2"), (1.0, 0.0, "Q4"), (0.51, 0.2, "Q4")]  # fmt: skip


class _Circles(HTMLParser):
    def __init__(self):
        super().__init__()
        self.circles = []

    def handle_starttag(self, tag, attrs):
        if tag == "circle":
            self.circles.append(dict(attrs))


def test_map_colour_agrees_with_position():
    tracks = [_track(i, v, a, q) for i, (v, a, q) in enumerate(POINTS)]
    assert map_quadrants([v for v, _, _ in POINTS], [a for _, a, _ in POINTS]) == [
        reported_quadrant(v, a) for v, a, _ in POINTS
    ]
    # the HTML page: the position each circle is drawn at lies in the quadrant of its colour
    parser = _Circles()
    parser.feed(map_html(tracks, size=720))
    colour_to_quadrant = {c: q for q, c in QUADRANT_COLOURS.items()}
    pad, size = 40, 720
    for circle, (v, a, _) in zip(parser.circles, POINTS):
        x, y = float(circle["cx"]), float(circle["cy"])
        drawn_v = VA_RANGE[0] + (x - pad) / (size - 2 * pad) * (VA_RANGE[1] - VA_RANGE[0])
        drawn_a = VA_RANGE[0] + (size - pad - y) / (size - 2 * pad) * (VA_RANGE[1] - VA_RANGE[0])
        assert (drawn_v, drawn_a) == pytest.approx((v, a), abs=0.002)
        assert colour_to_quadrant[circle["fill"]] == reported_quadrant(v, a) == circle["data-quadrant"]
    # the matplotlib figure: axes 0..1, boundaries at the midpoint, each colour's dots in its quadrant
    fig = map_figure(tracks)
    ax = fig.axes[0]
    assert ax.get_xlim() == VA_RANGE and ax.get_ylim() == VA_RANGE
    assert {line.get_xdata()[0] for line in ax.lines if len(set(line.get_xdata())) == 1} == {VA_MIDPOINT}
    drawn = 0
    for collection in ax.collections:
        offsets = collection.get_offsets()
        if not len(offsets):
            continue
        colour = "#{:02x}{:02x}{:02x}".format(*(round(c * 255) for c in collection.get_facecolor()[0][:3]))
        quadrant = colour_to_quadrant[colour]
        assert all(reported_quadrant(v, a) == quadrant for v, a in offsets)
        drawn += len(offsets)
    assert drawn == len(POINTS)


def test_mood_points_and_quadrant_words_on_the_new_scale(tmp_path):
    from moodscope.library.queries import parse_mood

    assert parse_mood("0.5,0.9").quadrant == "Q1" and parse_mood("0.2, 0.9").quadrant == "Q2"
    assert parse_mood("calm").point == pytest.approx((0.75, 0.25))
    with pytest.raises(Exception, match=r"must both lie in \[0, 1\]"):
        parse_mood("-0.5,0.5")


@pytest.fixture
def scanned(tmp_path):
    """A small library of generated tracks analysed by a stand-in classifier (no model)."""

    def analyzer(paths):
        for k, p in enumerate(paths):
            rng = np.random.default_rng(k)
            probs = rng.dirichlet(np.full(4, 0.5), size=3)
            yield str(p), Analysis(str(p), 15.0, "fake", np.arange(3) * 5.0, probs, va_from_probabilities(probs)), None

    music = tmp_path / "music"
    music.mkdir()
    for i in range(8):
        (music / f"s{i}.wav").write_bytes(b"RIFF" + bytes([i]) * 40)
    db = tmp_path / "lib.db"
    with MoodLibrary(db) as lib:
        lib.scan(music, analyzer=analyzer)
    return db


def test_library_cli_outputs_are_on_the_0_1_scale(scanned, capsys):
    assert main(["library", "list", "--format", "json", "--db", str(scanned)]) == 0
    tracks = json.loads(capsys.readouterr().out)["tracks"]
    assert len(tracks) == 8
    for t in tracks:
        p = t["probabilities"]
        assert 0 <= t["valence"] <= 1 and 0 <= t["arousal"] <= 1
        assert t["valence"] == pytest.approx(p["Q1"] + p["Q4"], abs=2e-4)
        assert t["arousal"] == pytest.approx(p["Q1"] + p["Q2"], abs=2e-4)
    assert main(["library", "journey", "--from", "0.1,0.1", "--to", "0.9,0.9", "--n", "4", "--format", "json",
                 "--db", str(scanned)]) == 0  # fmt: skip
    steps = json.loads(capsys.readouterr().out)["tracks"]
    to_target = [np.hypot(t["valence"] - 0.9, t["arousal"] - 0.9) for t in steps]
    assert len(steps) == 4 and to_target == sorted(to_target, reverse=True)


def test_analyze_cli_outputs_are_on_the_0_1_scale(tmp_path, capsys):
    song = write_audio(tmp_path / "song.wav", 11.0)
    out = tmp_path / "out.json"
    assert main(["analyze", str(song), "--model", "fast", "--format", "json", "--out", str(out)]) == 0
    (data,) = json.loads(out.read_text())
    for seg in data["segments"]:
        p = seg["probabilities"]
        assert 0 <= seg["valence"] <= 1 and seg["valence"] == pytest.approx(p["Q1"] + p["Q4"], abs=2e-4)
        assert 0 <= seg["arousal"] <= 1 and seg["arousal"] == pytest.approx(p["Q1"] + p["Q2"], abs=2e-4)
    s = data["summary"]
    assert s["valence"] == pytest.approx(s["probabilities"]["Q1"] + s["probabilities"]["Q4"], abs=2e-4)
    csv = tmp_path / "out.csv"
    assert (
        main(["analyze", str(song), "--model", "fast", "--format", "csv", "--rows", "tracks", "--out", str(csv)]) == 0
    )
    row = pd.read_csv(csv).iloc[0]
    assert 0 <= row["valence"] <= 1 and row["valence"] == pytest.approx(row["p_Q1"] + row["p_Q4"], abs=2e-4)
    assert "p(Q1) + p(Q4)" in row["va_meaning"]


# --- schema 6's migration: one vectorised pass, identical to the per-track one, all or nothing -------------

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _mixed_old_library(path, seed: int = 5) -> None:
    """A schema-5 library of 40 classifier tracks of 1 to 60 segments and 3 regressor tracks."""
    rng = np.random.default_rng(seed)
    tracks = []
    for i in range(40):
        probs = rng.dirichlet(np.full(4, 0.6), size=int(rng.integers(1, 61)))
        tracks.append((f"c{i}", probs, probs @ OLD_CENTRES))
    for i in range(3):
        k = int(rng.integers(1, 20))
        tracks.append((f"r{i}", np.full((k, 4), 0.25), rng.uniform(-1.2, 1.2, (k, 2))))  # a few beyond [-1, 1]
    _old_library(path, tracks)


def _per_track_migration():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from migrate_va import per_track_migration, stored_values
    finally:
        sys.path.remove(str(BENCHMARKS))
    return per_track_migration, stored_values


def test_the_vectorised_migration_stores_exactly_what_the_per_track_one_did(tmp_path):
    per_track_migration, stored_values = _per_track_migration()
    db, reference = tmp_path / "old.db", tmp_path / "reference.db"
    _mixed_old_library(db)
    shutil.copyfile(db, reference)
    conn = sqlite3.connect(reference)
    per_track_migration(conn)
    conn.commit()
    conn.close()
    MoodLibrary(db, create=False).close()  # migrates to the current schema
    tracks, segments = stored_values(db)
    assert (tracks, segments) == stored_values(reference)  # every value, bit for bit
    assert len(segments) > 500 and min(v for _, _, v, _ in segments) >= 0


def test_the_migration_reads_and_writes_in_a_few_statements_not_per_track(tmp_path):
    from moodscope.library.db import _va_to_probability_scale

    db = tmp_path / "old.db"
    _mixed_old_library(db)
    conn = sqlite3.connect(db, isolation_level=None)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    conn.execute("BEGIN")
    _va_to_probability_scale(conn)
    conn.execute("COMMIT")
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) <= 2, selects[:5]  # the per-track migration ran one SELECT per track (43 here)


def test_a_migration_killed_midway_leaves_the_schema_5_library_intact(tmp_path):
    _, stored_values = _per_track_migration()
    db = tmp_path / "old.db"
    _mixed_old_library(db)
    before = stored_values(db)
    # the process dies (SIGKILL) inside the migration, after the segments' new values are written
    script = (
        "import os, signal, sys\n"
        "import moodscope.library.profile as profile\n"
        "profile.profile_vectors = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n"
        "from moodscope.library import MoodLibrary\n"
        "MoodLibrary(sys.argv[1], create=False)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(db)], capture_output=True, timeout=120)
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 5
    conn.close()
    assert stored_values(db) == before  # nothing half-migrated
    with MoodLibrary(db, create=False) as lib:  # and the next open migrates it
        assert lib.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert lib.check() == []
