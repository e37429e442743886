"""The library calls the web API shares with the CLI: filtered and paged track lists, counts, map
columns, stored analyses and named playlists (the CLI's JSON is the playlist's ``to_dict``)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from moodscope.analysis.analyzer import Analysis, va_from_probabilities
from moodscope.cli import main
from moodscope.constants import QUADRANTS
from moodscope.errors import LibraryError
from moodscope.library import MoodLibrary
from moodscope.library.db import SCHEMA_VERSION
from moodscope.library.playlists import cluster_playlist, journey_playlist, list_tracks, mood_playlist


def content_analyzer(paths):
    """Moods drawn from a generator seeded by each file's content (a few segments each)."""
    for p in paths:
        rng = np.random.default_rng(int.from_bytes(hashlib.sha256(Path(p).read_bytes()).digest()[:4], "little"))
        n = int(rng.integers(2, 6))
        probs = rng.dirichlet(np.full(4, 0.5), size=n)
        yield str(p), Analysis(str(p), n * 5.0, "fake", np.arange(n) * 5.0, probs, va_from_probabilities(probs)), None


@pytest.fixture
def lib(tmp_path):
    music = tmp_path / "music"
    music.mkdir()
    for i in range(40):
        (music / f"song {i:02d}.wav").write_bytes(b"RIFF" + bytes([i]) * (50 + i))
    (music / "100%_pure.wav").write_bytes(b"RIFF percent")
    with MoodLibrary(tmp_path / "lib.db") as library:
        assert len(library.scan(music, analyzer=content_analyzer).analysed) == 41
        yield library


@pytest.mark.parametrize("mood", [None, "Q2", "calm", "0.3,0.2"])
def test_pages_partition_the_full_list_and_count_matches(lib, mood):
    full = lib.tracks(mood)
    assert lib.count(mood) == len(full) > 0
    pages = [lib.tracks(mood, limit=7, offset=o) for o in range(0, len(full) + 7, 7)]
    assert [t.id for page in pages for t in page] == [t.id for t in full]
    assert all(len(page) <= 7 for page in pages)


@pytest.mark.parametrize("mood", [None, "Q2", "calm", "0.3,0.2"])
@pytest.mark.parametrize("text", [None, "SONG 1", "nothing like it"])
@pytest.mark.parametrize("min_confidence", [0.0, 0.45])
def test_track_page_is_a_page_of_tracks_and_its_total(lib, mood, text, min_confidence):
    full = lib.tracks(mood, text=text, min_confidence=min_confidence)
    assert lib.count(mood, text=text, min_confidence=min_confidence) == len(full)
    for offset in (0, 3, len(full), len(full) + 5):
        page, total = lib.track_page(mood, text=text, min_confidence=min_confidence, limit=4, offset=offset)
        assert total == len(full), offset  # also on a page past the end
        assert [t.id for t in page] == [t.id for t in full[offset : offset + 4]]
        assert [t.score for t in page] == [t.score for t in full[offset : offset + 4]]
    assert [t.id for t in lib.track_page(mood, text=text, min_confidence=min_confidence)[0]] == [t.id for t in full]


def test_confidence_filters_agree_with_the_stored_values(lib):
    """The profiles keep each confidence as stored (float64): a threshold equal to a track's own
    confidence keeps that track, one a hair above it drops it, in lists and counts whichever path
    answers them (a float32 copy would keep it: both round to the same float32)."""
    stored = dict(lib.conn.execute("SELECT id, confidence FROM tracks"))
    for track_id, confidence in list(stored.items())[:12]:
        for threshold in (confidence, float(np.nextafter(confidence, 1.0))):
            expected = sorted(i for i, c in stored.items() if c >= threshold)
            assert (track_id in expected) == (threshold == confidence)
            assert lib.count(min_confidence=threshold) == len(expected)
            page, total = lib.track_page(min_confidence=threshold, limit=1000)
            assert [t.id for t in page] == expected and total == len(expected)
            near = lib.tracks("0.0,0.0", min_confidence=threshold)
            assert sorted(t.id for t in near) == expected == sorted(t.id for t in lib.tracks(min_confidence=threshold))


def test_a_library_of_schema_4_drops_its_snapshot_of_the_older_layout(lib):
    before = lib.profiles()
    path = lib.path
    lib.close()
    # a library as schema 4 left it: its snapshot held float32 confidences (4 bytes fewer per track)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE profile_snapshot SET data = substr(data, 1, length(data) - 4 * n)")
    for table, column in (
        ("tracks", "uncertain"),
        ("tracks", "ood_fraction"),
        ("segments", "ood"),
        ("segments", "ood_score"),
    ):
        conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")  # added by schema 7
    for trigger in ("tracks_insert_text", "tracks_delete_text", "tracks_update_text"):
        conn.execute(f"DROP TRIGGER {trigger}")  # added by schema 8, with the text index
    conn.execute("DROP TABLE tracks_text")
    conn.execute("PRAGMA user_version = 4")
    conn.commit()
    conn.close()
    with MoodLibrary(path, create=False) as again:
        assert again.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        after = again.profiles()
        assert np.array_equal(after.ids, before.ids) and np.array_equal(after.confidence, before.confidence)
        assert after.confidence.dtype == np.float64
        n, size = again.conn.execute("SELECT n, length(data) FROM profile_snapshot").fetchone()
        assert n == len(before.ids) and size == n * (
            8 + 1 + 8 + 4 + 4 * before.matrix.shape[1] + 1
        )  # saved again, whole


@pytest.mark.parametrize("mood", [None, "Q1", "0.0,0.0"])
def test_text_filter_is_a_case_insensitive_substring_of_title_artist_or_path(lib, mood):
    found = lib.tracks(mood, text="SONG 1")
    expected = {t.id for t in lib.tracks(mood) if "song 1" in t.path.lower()}
    assert {t.id for t in found} == expected
    assert lib.count(mood, text="SONG 1") == len(expected)
    # the order of the unfiltered ranking is kept
    ranked = [t.id for t in lib.tracks(mood) if t.id in expected]
    assert [t.id for t in found] == ranked


def test_like_wildcards_in_the_text_are_literal(lib):
    assert [Path(t.path).name for t in lib.tracks(text="%_")] == ["100%_pure.wav"]
    assert lib.count(text="%") == 1 and lib.count(text="%_p") == 1  # as wildcards they would match every path
    assert lib.tracks(text="no such thing") == [] and lib.count(text="no such thing") == 0


def test_min_confidence_applies_to_lists_and_counts(lib):
    high = lib.tracks(min_confidence=0.5)
    assert all(t.confidence >= 0.5 for t in high)
    assert lib.count(min_confidence=0.5) == len(high) < len(lib)


def test_points_are_the_tracks_as_columns(lib):
    lib.conn.execute("UPDATE tracks SET artist = 'Band' WHERE id % 3 = 0")
    lib.conn.execute("UPDATE tracks SET artist = 'Other' WHERE id % 3 = 1")
    points = lib.points()
    tracks = lib.tracks()
    assert points["id"] == [t.id for t in tracks] and points["quadrants"] == list(QUADRANTS)
    assert points["artists"] == ["Other", "Band"]  # each artist once, in order of appearance
    columns = ("id", "title", "artist", "quadrant", "confidence", "valence", "arousal")
    assert {len(points[c]) for c in columns} == {len(lib)}
    for i, t in enumerate(tracks):
        assert points["title"][i] == t.display_title and QUADRANTS[points["quadrant"][i]] == t.quadrant
        assert points["artist"][i] == (-1 if t.artist is None else points["artists"].index(t.artist))
        assert points["valence"][i] == pytest.approx(t.valence, abs=1e-4)
        assert points["arousal"][i] == pytest.approx(t.arousal, abs=1e-4)
        assert points["confidence"][i] == pytest.approx(t.confidence, abs=1e-4)


def test_stored_analysis_matches_the_track_summary(lib):
    track = lib.tracks()[5]
    analysis = lib.analysis(track.id)
    data = analysis.to_dict()
    assert data["track"] == track.path and data["model"] == "fake"
    assert data["model_hash"] == track.model_hash and data["moodscope_version"] == track.moodscope_version
    assert len(data["segments"]) == len(lib.timeline(track.id))
    assert data["summary"]["quadrant"] == track.quadrant
    assert data["summary"]["confidence"] == pytest.approx(track.confidence, abs=1e-4)
    for q in QUADRANTS:
        assert data["summary"]["probabilities"][q] == pytest.approx(track.probabilities[q], abs=1e-4)


def test_cli_json_is_the_playlist_dict(lib, capsys):
    db = str(lib.path)
    cases = [
        (
            ["library", "journey", "--from", "sad", "--to", "happy", "--n", "5"],
            journey_playlist(lib, "sad", "happy", n=5),
        ),
        (["library", "playlist", "--mood", "calm", "--n", "4"], mood_playlist(lib, "calm", n=4)),
        (["library", "list", "--mood", "Q2"], list_tracks(lib, "Q2")),
        (["library", "clusters", "--k", "3", "--cluster", "2"], cluster_playlist(lib, 3, 2)),
    ]
    for argv, playlist in cases:
        assert main([*argv, "--db", db, "--format", "json"]) == 0
        assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(playlist.to_dict()))
        assert playlist.m3u().startswith("#EXTM3U\n#PLAYLIST:" + playlist.name)


def test_cluster_playlist_checks_the_index(lib):
    with pytest.raises(LibraryError, match="between 1 and 3"):
        cluster_playlist(lib, 3, 4)
    with pytest.raises(LibraryError, match="between 1 and 3"):
        cluster_playlist(lib, 3, 0)


def test_clusters_and_stats_are_computed_once_per_library_state(lib, tmp_path):
    stats = lib.stats()
    assert lib.stats() == stats and lib.stats() is not stats
    first, again = lib.clusters(3), lib.clusters(3)
    assert [c.to_dict() for c in first] == [c.to_dict() for c in again]
    assert first[0] is not again[0] and first[0].rows is again[0].rows  # the cached clustering, fresh objects
    assert lib.clusters(2)[0].rows is not first[0].rows
    more = tmp_path / "more"
    more.mkdir()
    (more / "extra.wav").write_bytes(b"RIFF extra content")
    lib.scan(more, analyzer=content_analyzer)
    after = lib.clusters(3)
    assert sum(c.size for c in after) == len(lib) == 42
    assert lib.stats()["tracks"] == stats["tracks"] + 1  # and the counts follow the library
    with MoodLibrary(lib.path) as other:  # a change made by another connection is seen too
        other.conn.execute("DELETE FROM tracks WHERE id = 1")
    assert lib.stats()["tracks"] == stats["tracks"] and sum(c.size for c in lib.clusters(3)) == 41
