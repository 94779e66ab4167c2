"""Paths the tests share: the repository root, the kit's sample split, the official development split."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEV_DATA = ROOT.parent / "shared" / "data" / "development.json"
SAMPLE_DATA = ROOT / "data" / "sample.json"
