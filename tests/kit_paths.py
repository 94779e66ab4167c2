"""Paths the tests share: the tests folder, the repository root, the kit's sample split, the official development split."""

from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
DEV_DATA = ROOT.parent / "shared" / "data" / "development.json"
SAMPLE_DATA = ROOT / "data" / "sample.json"
