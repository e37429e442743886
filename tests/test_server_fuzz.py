"""Fuzzing the API from its own OpenAPI schema (schemathesis): whatever the parameters and bodies,
no 5xx, documented statuses and content types only, and every response matches its schema.

Positive and negative cases are generated for every operation, a bounded number per operation
(``MOODSCOPE_FUZZ_EXAMPLES``, default 10, so that CI stays fast; raise it for a deeper run). The
app serves a small library (analysed by a tiny random model) with scanning enabled on a folder.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import schemathesis
import soundfile as sf
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from moodscope.library import MoodLibrary
from moodscope.models.checkpoint import save_random_checkpoint
from moodscope.server.app import create_app, router
from moodscope.server.config import ServerConfig

EXAMPLES = int(os.environ.get("MOODSCOPE_FUZZ_EXAMPLES", "10"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzz")
    model = str(save_random_checkpoint(base / "tiny.pt"))
    music = base / "music"
    music.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        sf.write(music / f"t{i}.wav", (0.2 * rng.standard_normal(22_050 * 6)).astype(np.float32), 22_050)
    with MoodLibrary(base / "lib.db") as lib:
        assert len(lib.scan(music, model=model, workers=1).analysed) == 4
    app = create_app(ServerConfig(db=base / "lib.db", model=model, workers=1, queue=2, roots=(music,),
                                  max_upload_bytes=256 * 1024))  # fmt: skip
    with TestClient(app):  # runs the lifespan: the app's state lives until the module's tests end
        yield app


@pytest.fixture(scope="module")
def api_schema(fuzzed_app):
    return schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app)


OPERATIONS = [(method, route.path) for route in router.routes for method in sorted(route.methods)]


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_from_its_schema(api_schema, method, path):
    """Valid and invalid requests drawn from the operation's schema (hypothesis drives the search)."""
    operation = api_schema[path][method]
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=cases)
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])  # fmt: skip
    def run(case):
        case.call_and_validate(checks=CHECKS)

    run()


def test_every_operation_is_fuzzed(api_schema):
    documented = {(m.upper(), p) for p, item in api_schema.raw_schema["paths"].items() for m in item}
    assert documented == set(OPERATIONS)


# the text filter goes to SQLite's full-text index as an FTS5 query: its syntax, quotes, LIKE's wildcards,
# control characters and NUL must all be taken literally (or scanned), never an error
HOSTILE_Q = ['"', '""', '"""', "'", "*", "t*", "-t0", "NEAR", "NEAR(t0 t1)", "t0 AND t1", "t0 OR", "NOT t0", "^t0",
             "path:t0", "{path}:t0", "(t0", "t0)", "+", "%", "_", "%_%", "\\", "\\%", "\x00", "t0\x00", "\x00\x00\x00",
             "a\x00\"b", "\u202e0t", "🎵🎵🎵", "T0.WAV", "t0.wav", "wav", "x" * 200, " ", "   ", "\t\n\r"]  # fmt: skip


def _scanned_total(app, q: str) -> int:
    """How many tracks the scan of the table (the filter without its index) finds for ``q``."""
    with MoodLibrary(app.state.server.config.db, create=False) as lib:
        lib.text_index = False
        return lib.count(text=q)


@pytest.mark.parametrize("q", HOSTILE_Q, ids=[repr(q)[:24] for q in HOSTILE_Q])
def test_hostile_text_search_is_answered_as_the_scan_would(fuzzed_app, q):
    with TestClient(fuzzed_app) as client:  # the app's lifespan, as schemathesis runs it for each call
        response = client.get("/api/v1/tracks", params={"q": q, "limit": 10})
    assert response.status_code == 200, response.text
    assert response.json()["total"] == _scanned_total(fuzzed_app, q)


def test_raw_and_invalid_percent_encodings_of_q_are_no_server_error(fuzzed_app):
    with TestClient(fuzzed_app) as client:
        for raw in ("%ff%fe%fd", "%22%00%22", "%ed%a0%80abc", "t0%20NEAR%28", "%25%5f%5c", "%e2%80", "a" * 201):
            response = client.get(f"/api/v1/tracks?q={raw}")
            assert response.status_code in (200, 422), (raw, response.status_code, response.text)


@given(q=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=200))
@settings(max_examples=EXAMPLES * 5, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
def test_any_text_search_is_answered_as_the_scan_would(fuzzed_app, q):
    with TestClient(fuzzed_app) as client:  # the app's lifespan, as schemathesis runs it for each call
        response = client.get("/api/v1/tracks", params={"q": q, "limit": 10})
    assert response.status_code == 200, response.text
    assert response.json()["total"] == _scanned_total(fuzzed_app, q)
