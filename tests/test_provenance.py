"""Provenance: every output of an analysis names the moodscope version, the model and the model's content hash."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import pandas as pd
import pyarrow.parquet as pq
import pytest

from moodscope.analysis.musicnn_onnx import onnx_path
from moodscope.analysis.pretrained import SHIPPED_MODELS, load_model
from moodscope.cli import main
from moodscope.library import MoodLibrary
from moodscope.library.db import APPLICATION_ID, MIGRATIONS, _statements
from moodscope.library.export import tracks_csv
from moodscope.models.checkpoint import save_random_checkpoint
from moodscope.version import __version__
from test_analyze_cli import write_audio


def sha256(*paths) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in paths)).hexdigest()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = save_random_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt")
    return path, sha256(path)


def test_model_hash_is_the_hash_of_the_files_the_model_is_made_of(tiny):
    path, digest = tiny
    assert load_model(path).content_hash == digest  # = `sha256sum tiny.pt`
    accurate = load_model("accurate")  # its checkpoint, then the int8 musicnn graphs it runs
    assert accurate.content_hash == sha256(SHIPPED_MODELS["accurate"], onnx_path("msd"), onnx_path("mtt"))
    assert load_model("fast").content_hash == sha256(SHIPPED_MODELS["fast"])


def test_every_analyze_output_carries_version_model_and_hash(tmp_path, capsys, tiny):
    path, digest = tiny
    song = write_audio(tmp_path / "song.wav", 11.0)
    for fmt in ("json", "csv", "parquet"):
        assert main(["analyze", str(song), "--model", str(path), "--out", str(tmp_path / f"out.{fmt}")]) == 0
    expected = {"moodscope_version": __version__, "model": f"hybrid:{path.name}", "model_hash": digest}
    track = json.loads((tmp_path / "out.json").read_text())[0]
    assert {k: track[k] for k in expected} == expected
    for frame in (pd.read_csv(tmp_path / "out.csv"), pd.read_parquet(tmp_path / "out.parquet")):
        assert len(frame) == 2
        for key, value in expected.items():
            assert list(frame[key]) == [value] * 2
    meta = json.loads(pq.read_schema(tmp_path / "out.parquet").metadata[b"moodscope"])
    assert meta["moodscope_version"] == __version__ and meta["models"] == {expected["model"]: digest}
    assert main(["analyze", str(song), "--model", str(path)]) == 0
    assert f"sha256:{digest[:12]}" in capsys.readouterr().out


def test_library_rows_and_exports_carry_provenance_and_old_libraries_migrate(tmp_path, tiny):
    path, digest = tiny
    db = tmp_path / "v2.db"  # a library written before provenance was recorded (schema 2)
    conn = sqlite3.connect(db)
    for migration in MIGRATIONS[:2]:
        for statement in _statements(migration):
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 2")
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.commit()
    conn.close()
    music = tmp_path / "music"
    music.mkdir()
    write_audio(music / "a.wav", 6.0)
    write_audio(music / "b.wav", 11.0, seed=1)
    with MoodLibrary(db) as lib:
        lib.scan(music, model=str(path), workers=1)
        tracks = lib.tracks()
        assert len(tracks) == 2
        for t in tracks:
            assert (t.model, t.model_hash, t.moodscope_version) == (f"hybrid:{path.name}", digest, __version__)
            assert t.to_dict()["model_hash"] == digest
        rows = pd.read_csv(__import__("io").StringIO(tracks_csv(tracks)))
        assert list(rows["model_hash"]) == [digest] * 2
