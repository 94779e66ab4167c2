"""Fixtures the reports' tests share."""

import json

import pytest
from kit_paths import SAMPLE_DATA


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    """The sample split without its embedding-metric task, so scoring needs no embedding model."""
    lines = [line for line in SAMPLE_DATA.read_text(encoding="utf-8").splitlines()
             if line.strip() and "sent-transformer" not in json.loads(line)["metric"]]
    path = tmp_path_factory.mktemp("data") / "sample-no-embeddings.json"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
