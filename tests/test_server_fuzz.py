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
