"""The benchmarks' tests run their pieces outside the harness: no profile card exported."""

import pytest


@pytest.fixture(autouse=True)
def outside_the_harness(no_exported_card):
    """No profile card exported (a test sets one itself)."""
