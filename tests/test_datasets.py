"""Dataset loaders: tiny fixtures in each official layout (with defects), one contract test over every
loader, the CLI, and tests on the real data in ../shared/data (skipped when it is absent)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from moodscope.cli import main
from moodscope.constants import QUADRANTS
from moodscope.datasets import (
    DATASETS,
    DEAM,
    Dataset,
    EmoMusic,
    FolderDataset,
    FourQ,
    PMEmo,
    ValidationReport,
    cross_check,
    load_dataset,
)
from moodscope.datasets.folder import detect_scale
from moodscope.errors import DatasetError

REAL_DATA = Path(__file__).parents[1].parent / "shared" / "data"

# --- fixture builders ------------------------------------------------------------------------------

DEAM_2013 = [str(i) for i in range(2, 32)]  # 30 songs, the emoMusic songs
DEAM_2014 = [str(i) for i in range(1001, 1026)]  # 25 songs
DEAM_2015 = ["2001", "2002", "2003"]  # full songs, longer dynamic series
N_SAMPLES = 60  # 15.0 … 44.5 s


def truth(ids: list[str], seed: int) -> dict[str, tuple[float, float]]:
    """True (valence, arousal) in [-0.8, 0.8] per song, with distinct spreads per axis."""
    rng = np.random.default_rng(seed)
    return {i: (float(rng.uniform(-0.8, 0.8)), float(rng.uniform(-0.8, 0.8))) for i in ids}


def series(value: float, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(value + rng.normal(0, 0.05, n), -1, 1)


def to_1_9(x: float) -> float:
    return round(5 + 4 * x, 1)


def write_wide(path: Path, rows: dict[str, np.ndarray], n_columns: int) -> None:
    """The 2-Hz wide format: song_id, sample_15000ms … NaN-padded (empty fields) to ``n_columns``."""
    header = ["song_id"] + [f"sample_{15000 + 500 * k}ms" for k in range(n_columns)]
    lines = [",".join(header)]
    for song, values in rows.items():
        cells = [f"{v:.6f}" for v in values] + ["NaN"] * (n_columns - len(values))
        lines.append(",".join([song, *cells]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def fake_audio(path: Path) -> Path:
    """A placeholder audio file: loaders only check existence, they never decode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00")
    return path


def dynamic_rows(labels: dict[str, tuple[float, float]], lengths: dict[str, int], axis: int) -> dict[str, np.ndarray]:
    return {
        song: series(va[axis], lengths.get(song, N_SAMPLES), seed=int(song) * 2 + axis) for song, va in labels.items()
    }


def make_deam(root: Path, *, dynamic: bool = True) -> dict[str, tuple[float, float]]:
    """A DEAM folder with the real files' quirks and defects.

    The 2013 block's static valence/arousal columns are swapped (as in the real file); song 1005 is
    repeated identically; 1010 has an out-of-range valence, 1011 an unreadable arousal, 1012 no valence.
    """
    labels = {**truth(DEAM_2013, 1), **truth(DEAM_2014, 2), **truth(DEAM_2015, 3)}
    song_level = root / "annotations" / "annotations averaged per song" / "song_level"
    song_level.mkdir(parents=True)
    lines = ["song_id, valence_mean, valence_std, arousal_mean, arousal_std"]
    for song in DEAM_2013 + DEAM_2014:
        v, a = labels[song]
        if song in DEAM_2013:
            v, a = a, v  # the real defect: the 2013 block is swapped
        valence = {"1010": "12.0", "1012": ""}.get(song, str(to_1_9(v)))
        arousal = "high" if song == "1011" else str(to_1_9(a))
        lines.append(f"{song},{valence},1.1,{arousal},1.2")
        if song == "1005":
            lines.append(lines[-1])
    (song_level / "static_annotations_averaged_songs_1_2000.csv").write_text("\n".join(lines) + "\n")
    extra = ", ".join(["valence_ max_mean", "valence_max_std", "valence_min_mean", "valence_min_std"])
    lines = [f"song_id, valence_mean, valence_std, {extra}, arousal_mean, arousal_std, arousal_max_mean"]
    for song in DEAM_2015:
        v, a = labels[song]
        lines.append(f"{song},{to_1_9(v)},0.9,7.0,1.0,3.0,1.0,{to_1_9(a)},1.3,8.0")
    (song_level / "static_annotations_averaged_songs_2000_2058.csv").write_text("\n".join(lines) + "\n")
    if dynamic:
        folder = root / "annotations" / "annotations averaged per song" / "dynamic (per second annotations)"
        lengths = {"2001": 90, "2002": 75, "2003": 70}
        write_wide(folder / "valence.csv", dynamic_rows(labels, lengths, 0), 90)
        write_wide(folder / "arousal.csv", dynamic_rows(labels, lengths, 1), 91)  # one more column, as in the real file
    meta = root / "metadata"
    meta.mkdir()
    rows = ["song_id,file_name,Artist,Song title,start of the segment (min.sec),end of the segment (min.sec),Genre"]
    rows += [f'{s},"\t{s}.mp3","Artist {s}\t","\tTitle {s}\t","\t0.48\t","\t1.33\t","\tBlues\t"' for s in DEAM_2013]
    (meta / "metadata_2013.csv").write_text("\n".join(rows) + "\n")
    rows = ["Id,Artist,Album,Track,Genre,segment start,segment end,last.fm labels"]
    rows += [f"{s},Band {s},Album {s},Track {s},Rock-Blues,12.0,161.3,sad,slow,,,," for s in DEAM_2014]
    (meta / "metadata_2014.csv").write_text("\n".join(rows) + "\n")
    rows = ["id,Filename,title,artist,album,genre,"] + [f"{s},F_{s},Song {s},Singer {s},n/a,Pop," for s in DEAM_2015]
    (meta / "metadata_2015.csv").write_text("\n".join(rows) + "\n")
    for song in ("2", "3"):
        fake_audio(root / "MEMD_audio" / f"{song}.mp3")
    fake_audio(root / "MEMD_audio" / "9999.mp3")  # extra audio: no annotation
    return labels


def make_emomusic(root: Path, labels: dict[str, tuple[float, float]]) -> None:
    """An emoMusic folder for the DEAM 2013 songs, in its (correct) orientation."""
    ann = root / "annotations"
    ann.mkdir(parents=True)
    songs = [s for s in labels if s in DEAM_2013]
    lines = ["song_id,mean_arousal,std_arousal,mean_valence,std_valence"]
    lines += [f"{s},{to_1_9(labels[s][1])},1.2,{to_1_9(labels[s][0])},1.1" for s in songs]
    (ann / "static_annotations.csv").write_text("\n".join(lines) + "\n")
    header = '"song_id","file_name","Artist","Song title","start of the segment (min.sec)",'
    header += '"end of the segment (min.sec)","Genre","Mediaeval 2013 set"'
    rows = [header]
    for k, s in enumerate(songs):
        split = "evaluation" if k % 5 == 0 else "development"
        rows.append(f'{s},"\t{s}.mp3","Artist {s}\t","\tTitle {s}\t","\t0.48\t","\t1.33\t","\tBlues\t","{split}"')
    (ann / "songs_info.csv").write_text("\n".join(rows) + "\n")
    subset = {s: labels[s] for s in songs}
    write_wide(ann / "valence_cont_average.csv", dynamic_rows(subset, {}, 0), N_SAMPLES + 1)
    write_wide(ann / "arousal_cont_average.csv", dynamic_rows(subset, {}, 1), N_SAMPLES + 1)
    fake_audio(root / "clips_45seconds" / "2.mp3")


PMEMO_IDS = [str(i) for i in (1, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24)]


def make_pmemo(root: Path) -> dict[str, tuple[float, float]]:
    """A PMEmo2019 folder: 0–1 scale, long dynamic format from 15.5 s.

    Defects: one repeated dynamic frame (song 4) and one out-of-range static arousal (song 5: 1.3).
    """
    labels = truth(PMEMO_IDS, 4)
    ann = root / "annotations"
    ann.mkdir(parents=True)
    lines = ["musicId,Arousal(mean),Valence(mean)"]
    for s in PMEMO_IDS:
        v, a = labels[s]
        arousal = 1.3 if s == "5" else round((a + 1) / 2, 3)
        lines.append(f"{s},{arousal},{round((v + 1) / 2, 3)}")
    (ann / "static_annotations.csv").write_text("\n".join(lines) + "\n")
    lines = ["musicId,frameTime,Arousal(mean),Valence(mean)"]
    for s in PMEMO_IDS:
        v, a = labels[s]
        n = 30 + int(s)
        vs, arr = series(v, n, int(s)), series(a, n, int(s) + 100)
        for k in range(n):
            lines.append(f"{s},{15.5 + 0.5 * k},{(arr[k] + 1) / 2},{(vs[k] + 1) / 2}")
            if s == "4" and k == 3:
                lines.append(lines[-1])
    (ann / "dynamic_annotations.csv").write_text("\n".join(lines) + "\n")
    lines = ["musicId,fileName,title,artist,album,duration,chorus_start_time,chorus_end_time"]
    lines += [f'{s},{s}.mp3,Title {s},Artist {s},"Album, {s}",{30 + int(s) / 2 + 15.6},02:35,03:05' for s in PMEMO_IDS]
    lines.append("999,999.mp3,Unannotated,Nobody,None,30.0,01:00,01:30")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    fake_audio(root / "chorus" / "1.mp3")
    return labels


FOURQ_SONGS = {f"MT{q}{k:08d}": f"Q{q}" for q in range(1, 5) for k in range(3)}


def make_fourq(root: Path) -> None:
    """A 4Q folder (CRLF line ends). Defects: MT100000001 filed under Q2/, MT200000002 has quadrant
    'Q5', MT300000002 disagrees with the metadata, MT400000002 has no audio, Q1/EXTRA.mp3 is unannotated."""
    root.mkdir(parents=True)
    labels = dict(FOURQ_SONGS, MT200000002="Q5")
    rows = ["Song,Quadrant"] + [f"{s},{q}" for s, q in labels.items()]
    (root / "panda_dataset_taffc_annotations.csv").write_bytes(("\r\n".join(rows) + "\r\n").encode())
    head = '"Song","Artist","Title","Quadrant","PQuad","MoodsTotal","Moods","MoodsFoundStr","MoodsStr",'
    head += '"MoodsStrSplit","Genres","GenresStr","Sample","SampleURL"'
    rows = [head]
    for k, (s, q) in enumerate(FOURQ_SONGS.items()):
        q = "Q1" if s == "MT300000002" else q
        artist = f"Artist {k // 2}"
        rows.append(
            f'"{s}","{artist}","Title {k}","{q}",0.5,3,3,"calm","Calm; Quiet","Calm; Quiet",1,"Rock",1,"http://x"'
        )
    (root / "panda_dataset_taffc_metadata.csv").write_bytes(("\r\n".join(rows) + "\r\n").encode())
    for s, q in FOURQ_SONGS.items():
        if s == "MT400000002":
            continue
        fake_audio(root / ("Q2" if s == "MT100000001" else q) / f"{s}.mp3")
    fake_audio(root / "Q1" / "EXTRA.mp3")


def make_folder(
    root: Path, rows: list[str], header: str = "path,valence,arousal", name: str = "annotations.csv"
) -> Path:
    """A user folder: audio files a.wav, b.wav, sub/c.wav, sub/a.wav and a CSV with ``rows``."""
    for rel in ("a.wav", "b.wav", "sub/c.wav", "sub/a.wav"):
        fake_audio(root / rel)
    (root / name).write_text("\n".join([header, *rows]) + "\n")
    return root


def folder_va(root: Path) -> FolderDataset:
    make_folder(root, ["a.wav,7.5,2.0", "b.wav,3.0,8.0", "sub/c.wav,5.0,5.0", "missing.wav,6,6"])
    return FolderDataset(root)


def folder_quadrant(root: Path) -> FolderDataset:
    make_folder(root, ["a.wav,Q1,x", "b.wav,2,x", "sub/c.wav,q3,y", "sub/a.wav,4,y"], header="file,quadrant,artist")
    return FolderDataset(root)


def build_deam(tmp: Path) -> Dataset:
    make_deam(tmp / "deam")
    return DEAM(tmp / "deam")


def build_emomusic(tmp: Path) -> Dataset:
    make_emomusic(tmp / "emomusic", truth(DEAM_2013, 1))
    return EmoMusic(tmp / "emomusic")


def build_pmemo(tmp: Path) -> Dataset:
    make_pmemo(tmp / "PMEmo2019")
    return PMEmo(tmp / "PMEmo2019")


def build_fourq(tmp: Path) -> Dataset:
    make_fourq(tmp / "MER_audio_taffc_dataset")
    return FourQ(tmp / "MER_audio_taffc_dataset")


BUILDERS = {
    "deam": build_deam,
    "mturk": build_emomusic,
    "pmemo": build_pmemo,
    "4q": build_fourq,
    "folder-va": lambda tmp: folder_va(tmp / "mine"),
    "folder-quadrant": lambda tmp: folder_quadrant(tmp / "mine"),
}


def kinds(report_or_issues, severity: str | None = None) -> Counter:
    issues = report_or_issues.issues if isinstance(report_or_issues, ValidationReport) else report_or_issues
    return Counter(i.kind for i in issues if severity is None or i.severity == severity)


def issue_ids(report: ValidationReport, kind: str) -> set[str | None]:
    return {i.track_id for i in report.issues if i.kind == kind}


# --- the contract, over every loader ---------------------------------------------------------------


def test_every_registered_loader_has_a_fixture():
    assert {cls for cls in DATASETS.values()} == {DEAM, EmoMusic, PMEmo, FourQ, FolderDataset}
    assert DATASETS["emomusic"] is DATASETS["mturk"]


@pytest.mark.parametrize("name", BUILDERS)
def test_loader_contract(name, tmp_path):
    dataset = BUILDERS[name](tmp_path)
    tracks = dataset.tracks()
    assert tracks and dataset.name in DATASETS
    for track_id, track in tracks.items():
        assert isinstance(track_id, str) and track_id and track.track_id == track_id
        for x in (track.valence, track.arousal):
            assert x is None or (isinstance(x, float) and -1.0 <= x <= 1.0)
        if track.quadrant_label is not None or (track.valence is not None and track.arousal is not None):
            assert track.quadrant in QUADRANTS
        if track.dynamic is not None:
            d = track.dynamic
            assert d.times.shape == d.valence.shape == d.arousal.shape
            assert np.all(np.diff(d.times) > 0)
            for x in (d.valence, d.arousal):
                assert np.all(np.isnan(x) | (np.abs(x) <= 1.0))
    assert all(t.audio_path is not None and t.audio_path.exists() for t in dataset.with_audio())
    report = dataset.validate()
    assert isinstance(report, ValidationReport)
    assert report.n_tracks == len(tracks) and report.n_with_audio == len(dataset.with_audio())
    assert all(i.severity in ("error", "warning", "corrected") for i in report.issues)
    assert isinstance(report.counts(), dict)


# --- DEAM ------------------------------------------------------------------------------------------


def test_deam_corrects_the_swapped_2013_block(tmp_path, caplog):
    labels = make_deam(tmp_path)
    deam = DEAM(tmp_path)
    with caplog.at_level("WARNING"):
        tracks = deam.tracks()
    assert "swapped" in caplog.text
    assert len(tracks) == len(DEAM_2013) + len(DEAM_2014) + len(DEAM_2015)
    for song in ("2", "17", "1001", "1020", "2002"):  # 2013 corrected, 2014/2015 untouched
        assert tracks[song].valence == pytest.approx(labels[song][0], abs=0.02)
        assert tracks[song].arousal == pytest.approx(labels[song][1], abs=0.02)
    report = deam.validate()
    fixes = [i for i in report.issues if i.kind == "swapped-columns"]
    assert len(fixes) == 1 and fixes[0].severity == "corrected" and "2013" in fixes[0].message


def test_deam_reports_row_defects(tmp_path):
    make_deam(tmp_path)
    report = DEAM(tmp_path).validate()
    assert not report.ok
    assert issue_ids(report, "out-of-range") == {"1010"}
    assert issue_ids(report, "unreadable-row") == {"1011"}
    assert issue_ids(report, "missing-value") == {"1012"}
    assert [i.severity for i in report.issues if i.kind == "duplicate-id"] == ["corrected"]
    tracks = DEAM(tmp_path).tracks()
    assert tracks["1010"].valence is None and tracks["1011"].arousal is None
    assert tracks["1010"].quadrant is None


def test_deam_missing_audio_is_one_summary_and_extra_audio_is_listed(tmp_path):
    make_deam(tmp_path)
    report = DEAM(tmp_path).validate()
    missing = [i for i in report.issues if i.kind == "missing-audio"]
    assert len(missing) == 1 and missing[0].severity == "warning"
    assert str(len(DEAM_2013) + len(DEAM_2014) + len(DEAM_2015) - 2) in missing[0].message
    assert report.n_with_audio == 2
    assert any("9999.mp3" in i.message for i in report.issues if i.kind == "extra-audio")


def test_deam_dynamic_times_metadata_and_split(tmp_path):
    make_deam(tmp_path)
    tracks = DEAM(tmp_path).tracks()
    d = tracks["2"].dynamic
    assert d.times[0] == 15.0 and np.allclose(np.diff(d.times), 0.5) and len(d.times) == N_SAMPLES
    assert not np.isnan(d.valence).any()  # NaN padding trimmed
    assert len(tracks["2001"].dynamic.times) == 90 and tracks["2001"].dynamic.times[-1] == 15.0 + 0.5 * 89
    assert len(tracks["2003"].dynamic.times) == 70  # NaN padding of the shorter song trimmed
    assert tracks["2"].artist == "Artist 2" and tracks["2"].title == "Title 2"  # tabs stripped
    assert tracks["2"].metadata["genre"] == "Blues" and tracks["2"].metadata["set"] == "2013"
    assert tracks["1001"].metadata["tags"] == ["sad", "slow"] and tracks["1001"].artist == "Band 1001"
    assert tracks["2001"].artist == "Singer 2001" and tracks["2001"].metadata["genre"] == "Pop"
    assert tracks["2"].split == "development" and tracks["2001"].split == "evaluation"
    assert DEAM.clip_seconds == 45.0 and DEAM.has_dynamic


def test_deam_without_dynamic_cannot_correct_and_says_so(tmp_path):
    labels = make_deam(tmp_path, dynamic=False)
    deam = DEAM(tmp_path)
    report = deam.validate()
    assert kinds(report)["missing-file"] == 2 and "swapped-columns" not in kinds(report)
    assert deam.track("2").valence == pytest.approx(labels["2"][1], abs=0.02)  # still swapped


def test_static_dynamic_contradiction_is_reported(tmp_path):
    make_deam(tmp_path)
    path = tmp_path / "annotations" / "annotations averaged per song" / "song_level"
    path = path / "static_annotations_averaged_songs_2000_2058.csv"
    lines = path.read_text().splitlines()
    head, first, *rest = lines
    fields = first.split(",")
    v_dyn = DEAM(tmp_path).track("2001").dynamic.valence
    fields[1] = "1.5" if np.nanmean(v_dyn) > 0 else "8.5"  # opposite sign, far from zero
    path.write_text("\n".join([head, ",".join(fields), *rest]) + "\n")
    report = DEAM(tmp_path).validate()
    assert "2001" in issue_ids(report, "inconsistent")


def test_shifted_static_rows_are_an_error(tmp_path):
    make_deam(tmp_path)
    path = tmp_path / "annotations" / "annotations averaged per song" / "song_level"
    path = path / "static_annotations_averaged_songs_1_2000.csv"
    head, *rows = path.read_text().splitlines()
    ids = [r.split(",", 1)[0] for r in rows]
    values = [r.split(",", 1)[1] for r in rows]
    shifted = [f"{i},{v}" for i, v in zip(ids, values[-7:] + values[:-7])]  # labels moved 7 rows down
    path.write_text("\n".join([head, *shifted]) + "\n")
    report = DEAM(tmp_path).validate()
    assert any(i.kind == "inconsistent" and "shifted" in i.message and i.severity == "error" for i in report.issues)


# --- emoMusic and the cross-check ------------------------------------------------------------------


def test_emomusic_loads_splits_and_info(tmp_path):
    make_emomusic(tmp_path, truth(DEAM_2013, 1))
    emo = EmoMusic(tmp_path)
    tracks = emo.tracks()
    assert len(tracks) == len(DEAM_2013)
    assert tracks["2"].artist == "Artist 2" and tracks["2"].metadata["genre"] == "Blues"
    assert Counter(t.split for t in tracks.values()) == {"development": 24, "evaluation": 6}
    assert len(tracks["2"].dynamic.times) == N_SAMPLES
    report = emo.validate()
    assert report.ok and "swapped-columns" not in kinds(report) and kinds(report)["missing-audio"] == 1


def test_cross_check_agrees_after_correction(tmp_path):
    labels = make_deam(tmp_path / "deam")
    make_emomusic(tmp_path / "emo", labels)
    assert cross_check(DEAM(tmp_path / "deam"), EmoMusic(tmp_path / "emo")) == []


def test_cross_check_finds_swaps_and_differences(tmp_path):
    labels = make_deam(tmp_path / "deam", dynamic=False)  # uncorrectable: the 2013 block stays swapped
    make_emomusic(tmp_path / "emo", labels)
    issues = cross_check(DEAM(tmp_path / "deam"), EmoMusic(tmp_path / "emo"))
    swapped = [i for i in issues if "swapped" in i.message]
    distinct = {s for s in DEAM_2013 if abs(labels[s][0] - labels[s][1]) > 0.1}  # v ≈ a looks the same swapped
    assert distinct <= {i.track_id for i in swapped} <= set(DEAM_2013)
    assert all(i.severity == "error" for i in swapped)

    labels = make_deam(tmp_path / "deam2")
    shifted = dict(labels, **{"5": (labels["5"][0] + 0.3, labels["5"][1])})
    make_emomusic(tmp_path / "emo2", shifted)
    issues = cross_check(DEAM(tmp_path / "deam2"), EmoMusic(tmp_path / "emo2"))
    assert {i.track_id for i in issues} == {"5"} and issues[0].severity == "warning"


# --- PMEmo -----------------------------------------------------------------------------------------


def test_pmemo_scales_and_reads_long_dynamic(tmp_path):
    labels = make_pmemo(tmp_path)
    pmemo = PMEmo(tmp_path)
    tracks = pmemo.tracks()
    assert len(tracks) == len(PMEMO_IDS)
    assert tracks["1"].valence == pytest.approx(labels["1"][0], abs=0.002)
    d = tracks["7"].dynamic
    assert d.times[0] == 15.5 and np.allclose(np.diff(d.times), 0.5) and len(d.times) == 37
    assert np.nanmean(d.arousal) == pytest.approx(labels["7"][1], abs=0.05)
    assert len(tracks["4"].dynamic.times) == 34  # the repeated frame is dropped
    assert tracks["1"].artist == "Artist 1" and tracks["1"].metadata["album"] == "Album, 1"
    report = pmemo.validate()
    assert issue_ids(report, "out-of-range") == {"5"} and tracks["5"].arousal is None
    assert "4" in issue_ids(report, "duplicate-id")
    assert kinds(report)["unannotated"] == 1 and kinds(report)["missing-audio"] == 1
    assert report.n_with_audio == 1


# --- 4Q --------------------------------------------------------------------------------------------


def test_fourq_labels_artists_and_defects(tmp_path):
    make_fourq(tmp_path / "4q")
    fourq = FourQ(tmp_path / "4q")
    tracks = fourq.tracks()
    assert set(tracks) == set(FOURQ_SONGS) - {"MT200000002"}
    assert tracks["MT100000000"].quadrant == "Q1" and tracks["MT100000000"].valence is None
    assert tracks["MT100000000"].artist == "Artist 0" and tracks["MT100000000"].metadata["moods"] == ["Calm", "Quiet"]
    assert tracks["MT100000001"].audio_path.parent.name == "Q2"  # found where it is
    report = fourq.validate()
    assert not report.ok
    assert issue_ids(report, "unreadable-row") == {"MT200000002"}
    assert issue_ids(report, "inconsistent") == {"MT100000001", "MT300000002"}
    assert issue_ids(report, "missing-audio") == {"MT400000002"}
    assert any("EXTRA.mp3" in i.message for i in report.issues if i.kind == "extra-audio")


# --- folder ----------------------------------------------------------------------------------------


def test_folder_valence_arousal_auto_scale(tmp_path):
    dataset = folder_va(tmp_path)
    tracks = dataset.tracks()
    assert tracks["a"].valence == pytest.approx(0.625) and tracks["a"].arousal == pytest.approx(-0.75)
    assert tracks["a"].quadrant == "Q4" and tracks["b"].quadrant == "Q2"
    report = dataset.validate()
    assert issue_ids(report, "missing-audio") == {"missing"}
    assert {Path(i.message.split(": ")[-1]).name for i in report.issues if i.kind == "extra-audio"} == {"a.wav"}


def test_folder_quadrants_ids_and_artist(tmp_path):
    tracks = folder_quadrant(tmp_path).tracks()
    assert set(tracks) == {"a", "b", "c", "sub/a"}  # a.wav and sub/a.wav share a stem
    assert [tracks[k].quadrant for k in ("a", "b", "c", "sub/a")] == ["Q1", "Q2", "Q3", "Q4"]
    assert tracks["a"].artist == "x"


@pytest.mark.parametrize(
    ("scale", "values", "expected"),
    [("0..1", "0.75,0.25", (0.5, -0.5)), ("-1..1", "0.75,0.25", (0.75, 0.25)), ("1..9", "9,1", (1.0, -1.0))],
)
def test_folder_explicit_scale(tmp_path, scale, values, expected):
    make_folder(tmp_path, [f"a.wav,{values}"])
    track = load_dataset("folder", tmp_path, scale=scale).track("a")
    assert (track.valence, track.arousal) == pytest.approx(expected)


def test_folder_scale_detection():
    assert detect_scale(np.array([-0.5, 0.3]), Path("x.csv")) == "-1..1"
    assert detect_scale(np.array([1.0, 8.5]), Path("x.csv")) == "1..9"
    with pytest.raises(DatasetError, match=r"0\.\.1"):
        detect_scale(np.array([0.2, 0.9]), Path("x.csv"))
    with pytest.raises(DatasetError, match="none of the scales"):
        detect_scale(np.array([0.5, 10.0]), Path("x.csv"))


def test_folder_id_column_absolute_paths_and_bad_quadrant(tmp_path):
    absolute = fake_audio(tmp_path / "elsewhere" / "z.wav")
    make_folder(tmp_path / "mine", [f"{absolute},song-z,1", "a.wav,song-a,Q9"], header="path,id,quadrant")
    dataset = FolderDataset(tmp_path / "mine")
    tracks = dataset.tracks()
    assert tracks["song-z"].audio_path == absolute and tracks["song-z"].quadrant == "Q1"
    assert tracks["song-a"].quadrant is None
    assert issue_ids(dataset.validate(), "unreadable-row") == {"song-a"}


def test_folder_layout_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        FolderDataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no CSV"):
        FolderDataset(tmp_path / "empty")
    make_folder(tmp_path / "two", ["a.wav,1,1"], name="x.csv")
    (tmp_path / "two" / "y.csv").write_text("path,quadrant\n")
    with pytest.raises(DatasetError, match="several CSVs"):
        FolderDataset(tmp_path / "two")
    assert FolderDataset(tmp_path / "two", csv="x.csv").csv_path.name == "x.csv"
    make_folder(tmp_path / "nolabels", ["a.wav,1"], header="path,rating")
    with pytest.raises(DatasetError, match="quadrant"):
        FolderDataset(tmp_path / "nolabels").tracks()
    with pytest.raises(DatasetError, match="scale"):
        FolderDataset(tmp_path / "two", scale="0..10")


# --- registry and layout errors --------------------------------------------------------------------


def test_load_dataset_names_and_errors(tmp_path):
    make_deam(tmp_path / "data" / "deam")
    assert isinstance(load_dataset("DEAM", tmp_path / "data" / "deam"), DEAM)
    with pytest.raises(DatasetError, match=r"Unknown dataset 'nope'.*deam"):
        load_dataset("nope", tmp_path)
    with pytest.raises(DatasetError, match=r"contains 'annotations/'.*pass that folder") as err:
        load_dataset("deam", tmp_path / "data")
    assert str(tmp_path / "data" / "deam") in str(err.value)
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset("pmemo", tmp_path / "missing")
    with pytest.raises(DatasetError, match="takes no options"):
        load_dataset("4q", tmp_path, scale="1..9")


def test_unparseable_file_names_the_file(tmp_path):
    make_pmemo(tmp_path)
    (tmp_path / "annotations" / "static_annotations.csv").write_text("musicId,Arousal(mean)\n1,0.5\n")
    with pytest.raises(DatasetError, match=r"static_annotations.csv has no column 'Valence\(mean\)'"):
        PMEmo(tmp_path).tracks()


# --- CLI -------------------------------------------------------------------------------------------


def test_cli_validate_text_and_exit_status(tmp_path, capsys):
    make_fourq(tmp_path / "4q")
    assert main(["datasets", "validate", "4q", "--root", str(tmp_path / "4q")]) == 1
    out = capsys.readouterr().out
    assert "11 tracks, 10 with audio" in out and "error:missing-audio" in out and "[MT400000002]" in out
    make_folder(tmp_path / "ok", ["a.wav,Q1", "b.wav,Q2", "sub/c.wav,Q3", "sub/a.wav,Q4"], header="path,quadrant")
    assert main(["datasets", "validate", "folder", "--root", str(tmp_path / "ok")]) == 0
    assert "OK: no errors" in capsys.readouterr().out
    make_folder(tmp_path / "va", ["a.wav,0.2,0.9", "b.wav,0.5,0.5"], name="mine.csv")
    (tmp_path / "va" / "other.csv").write_text("x\n")
    args = ["datasets", "info", "folder", "--root", str(tmp_path / "va"), "--csv", "mine.csv"]
    assert main([*args, "--scale", "0..1"]) == 0
    assert "Q1 1, Q2 1, Q3 0, Q4 0" in capsys.readouterr().out  # (0, 0) counts as Q1
    assert main(args) == 1  # all values in [0, 1]: the scale must be given
    assert "--scale" in capsys.readouterr().err


def test_cli_validate_json_info_and_cross_check(tmp_path, capsys):
    labels = make_deam(tmp_path / "deam")
    make_emomusic(tmp_path / "emo", labels)
    assert main(["datasets", "validate", "deam", "--root", str(tmp_path / "deam"), "--format", "json"]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["n_tracks"] == 58 and payload["counts"]["corrected:swapped-columns"] == 1
    assert main(["datasets", "info", "emomusic", "--root", str(tmp_path / "emo"), "--format", "json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_tracks"] == 30 and info["n_with_audio"] == 1 and sum(info["quadrants"].values()) == 30
    assert main(["datasets", "cross-check", "--deam", str(tmp_path / "deam"), "--emomusic", str(tmp_path / "emo")]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["datasets", "info", "deam", "--root", str(tmp_path)]) == 1
    assert "contains 'annotations/'" in capsys.readouterr().err


def test_cli_list(capsys):
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in DATASETS)


# --- real data (../shared/data) --------------------------------------------------------------------


def real(relative: str) -> Path:
    path = REAL_DATA / relative
    if not path.is_dir():
        pytest.skip(f"real data not available: {path} is absent")
    return path


def test_real_fourq():
    fourq = FourQ(real("4q/MER_audio_taffc_dataset"))
    assert len(fourq.with_audio()) == 540
    assert Counter(t.quadrant for t in fourq.tracks().values()) == dict.fromkeys(QUADRANTS, 135)
    assert sum(t.artist is not None for t in fourq.tracks().values()) >= 530
    assert fourq.validate().ok


def test_real_deam():
    deam = DEAM(real("deam"))
    assert len(deam.tracks()) == 1802
    assert sorted(int(t.track_id) for t in deam.with_audio()) == [2, 3, 4, 5, 7, 8, 10, 12, 13, 17]
    report = deam.validate()
    assert report.ok and kinds(report)["missing-audio"] == 1
    [fix] = [i for i in report.issues if i.kind == "swapped-columns"]
    assert "2013" in fix.message and "744 songs" in fix.message
    song = deam.track("2")
    assert song.dynamic.times[0] == 15.0 and song.artist == "The New Mystikal Troubadours"


def test_real_emomusic():
    emo = EmoMusic(real("emomusic"))
    assert len(emo.tracks()) == 744 and len(emo.with_audio()) == 10
    assert Counter(t.split for t in emo.tracks().values()) == {"development": 619, "evaluation": 125}
    assert emo.validate().ok


def test_real_pmemo():
    pmemo = PMEmo(real("pmemo/PMEmo2019"))
    assert len(pmemo.tracks()) == 767
    assert sorted(t.track_id for t in pmemo.with_audio()) == ["108", "372", "634", "683"]
    assert pmemo.track("108").dynamic.times[0] == 15.5
    assert pmemo.validate().ok


def test_real_cross_dataset_consistency():
    issues = cross_check(DEAM(real("deam")), EmoMusic(real("emomusic")))
    assert not any(i.severity == "error" for i in issues)
    assert len(issues) <= 10  # a few songs rated by different rater sets
