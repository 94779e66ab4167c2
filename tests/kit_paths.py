"""Paths the tests share: the tests folder, the repository root, the kit's sample split, the official
development split. (Benchmarks and acceptance scripts are packages of the repository root: a test imports
them, e.g. ``from benchmarks import scoring_speed``.)"""

from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
DEV_DATA = ROOT.parent / "shared" / "data" / "development.json"
SAMPLE_DATA = ROOT / "data" / "sample.json"
