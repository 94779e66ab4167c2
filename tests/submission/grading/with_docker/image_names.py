"""Tags of the images the Docker tests build: ``<prefix>-<name>:latest``, the prefix from the environment
variable SHOPBENCH_TEST_IMAGE_PREFIX (default ``shopbench-test``), so that two checkouts sharing one Docker
daemon can run the tests at once without building over each other's images."""

import os

PREFIX = os.environ.get("SHOPBENCH_TEST_IMAGE_PREFIX", "shopbench-test")


def test_image(name: str) -> str:
    return f"{PREFIX}-{name}:latest"


test_image.__test__ = False  # a helper, not a test
