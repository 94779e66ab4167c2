"""Reading the classic builder's stream (build_log) and naming images and layers (image_cache), on text
recorded from a real build of docker/Dockerfile."""

import pytest

from submission.grading.build_log import BuildLog
from submission.grading.image_cache import cache_tag, instruction

RECORDED = """Step 1/25 : ARG BASE_IMAGE=nvidia/cuda:12.1.1-runtime-ubuntu22.04
Step 2/25 : FROM ${BASE_IMAGE} AS system
 ---> 30b7dd7b35ab
Step 3/25 : ENV DEBIAN_FRONTEND=noninteractive
 ---> Using cache
 ---> 1681701ef9b1
Step 7/25 : FROM system AS packages
 ---> b6be9ec14ec5
Step 8/25 : COPY docker/install_requirements.sh requirements.txt wheelhous[e] /tmp/deps/
 ---> 6164722f9c43
Step 9/25 : RUN sh /tmp/deps/install_requirements.sh
 ---> Running in 9de0f0fdf0df
installing from wheelhouse/ only (--no-index)
Removing intermediate container 9de0f0fdf0df
 ---> 6c1f7c2a7e37
Step 15/25 : FROM ${BASE_IMAGE} AS context
 ---> 30b7dd7b35ab
Step 16/25 : COPY . /context
 ---> d45c79debc9a
Step 18/25 : FROM system
 ---> b6be9ec14ec5
Step 19/25 : COPY --from=packages /opt/shopbench/packages/ /
 ---> Using cache
 ---> 272630dd3440
"""


def fed(text: str) -> BuildLog:
    log = BuildLog(tail_lines=3)
    for line in text.splitlines(keepends=True):
        log.feed(line)
    return log


def test_steps_stages_and_their_last_images():
    log = fed(RECORDED)
    steps = {s.number: s.cached for s in log.steps()}
    assert steps[3] is True and steps[8] is False and steps[19] is True and len(steps) == 10
    assert [(s.name, s.image_id) for s in log.stages()] == [
        ("system", "1681701ef9b1"), ("packages", "6c1f7c2a7e37"), ("context", "d45c79debc9a"), ("", "272630dd3440")]
    assert len(log.tail) == 3 and log.tail[-1].strip() == "---> 272630dd3440"
    assert not log.failed_at_from()


def test_a_build_that_stops_at_a_from_step_is_told_apart():
    assert fed("Step 1/3 : ARG BASE_IMAGE=x\nStep 2/3 : FROM ${BASE_IMAGE} AS system\n").failed_at_from()
    assert not fed("Step 2/3 : FROM base AS system\n ---> 30b7dd7b35ab\nStep 3/3 : RUN false\n").failed_at_from()


@pytest.mark.parametrize("tag, stage, ref", [
    ("shopbench-mysub:latest", "packages", "shopbench-mysub-build-cache:packages"),
    ("team-a:v3", "weights", "team-a-build-cache:weights"),
    ("localhost:5000/team/sub", "packages", "localhost:5000/team/sub-build-cache:packages"),
])
def test_cache_tags_name_the_repository_and_the_stage(tag, stage, ref):
    assert cache_tag(tag, stage) == ref


@pytest.mark.parametrize("created_by, shown", [
    ("/bin/sh -c #(nop) COPY dir:" + "ab12" * 16 + " in /opt/shopbench/cache ", "COPY ... in /opt/shopbench/cache"),
    ("/bin/sh -c #(nop) COPY --chown=1001:1001dir:" + "cd34" * 16 + " in /home/aicrowd ",
     "COPY --chown=1001:1001 ... in /home/aicrowd"),
    ("/bin/sh -c sh /tmp/deps/install_requirements.sh", "RUN sh /tmp/deps/install_requirements.sh"),
])
def test_layers_are_named_by_their_instruction_without_content_hashes(created_by, shown):
    assert instruction(created_by) == shown


PIP_SSL = ("\x1b[91mWARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, status=None)) after "
           "connection broken by 'SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate "
           "verify failed: self-signed certificate in certificate chain (_ssl.c:992)'))': /simple/torch/\n\x1b[0m")


def test_pip_failing_to_reach_the_index_is_found_in_the_tail_without_colour_codes():
    log = BuildLog()
    for text in ("Step 9/27 : RUN sh /tmp/deps/install_requirements.sh\n", " ---> Running in 8f8c1f5bd8e8\n", PIP_SSL,
                 "ERROR: No matching distribution found for torch==2.13.0\n"):
        log.feed(text)
    line = log.index_unreachable()
    assert line is not None and line.startswith("WARNING: Retrying") and "CERTIFICATE_VERIFY_FAILED" in line
    assert "\x1b" not in line


def test_a_missing_package_alone_is_not_an_unreachable_index():
    log = BuildLog()
    for text in ("Step 9/27 : RUN sh /tmp/deps/install_requirements.sh\n",
                 "ERROR: Could not find a version that satisfies the requirement nope==1.0 (from versions: none)\n",
                 "ERROR: No matching distribution found for nope==1.0\n"):
        log.feed(text)
    assert log.index_unreachable() is None
