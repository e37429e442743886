"""What the package metadata promises: type information shipped, the licences of everything shipped,
a description of what exists.

The installed metadata is checked when moodscope is installed (it is in CI: ``pip install -e``);
``pyproject.toml`` is checked in every case.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest

import moodscope
from moodscope.analysis.pretrained import SHIPPED_MODELS
from moodscope.constants import MODEL_NAMES, SEGMENT_SECONDS

REPO = Path(__file__).resolve().parents[1]
PACKAGE = Path(moodscope.__file__).resolve().parent


@pytest.fixture(scope="module")
def project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def test_py_typed_is_in_the_package_and_its_package_data():
    assert (PACKAGE / "py.typed").is_file()
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["moodscope"]


def test_the_licence_covers_the_code_and_every_shipped_weights_file(project):
    expression = project["license"]
    assert {"MIT", "ISC"} <= set(re.findall(r"[\w.-]+", expression)), expression
    assert re.search(r"LicenseRef-[\w.-]*research", expression), "the research-use terms of the trained models"
    for name in project["license-files"]:
        assert (REPO / name).is_file(), f"license file {name} is missing"
    licence = (REPO / "LICENSE").read_text()
    weights = [path for ext in ("pt", "safetensors", "onnx") for path in PACKAGE.glob(f"weights/*.{ext}")]
    shipped = [*weights, PACKAGE / "data" / "demo.ogg"]
    for path in shipped:
        assert path.name in licence, f"LICENSE does not say under which terms {path.name} is shipped"
    assert "research use" in licence and "ISC" in licence


def test_the_installed_metadata_carries_the_licence(project):
    try:
        metadata = importlib.metadata.metadata("moodscope")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("moodscope is not installed (running from the source tree)")
    assert metadata["License-Expression"] == project["license"]
    assert set(metadata.get_all("License-File") or []) >= set(project["license-files"])


def test_the_description_promises_what_exists(project):
    description = project["description"]
    assert f"{SEGMENT_SECONDS:g}-s segment" in description  # the segment length analyze uses
    assert "pretrained" in description and len(SHIPPED_MODELS) >= 1
    for words, name in (("CNN,", "cnn"), ("CNN-LSTM", "cnn-lstm"), ("hybrid", "hybrid")):
        assert words in description and name in MODEL_NAMES
    assert "library" in description and (PACKAGE / "library" / "scan.py").is_file()
