"""Small real model classes that fail in the ways grader submissions failed, for the harness tests.

Each answers deterministically (a hash of the seed and the prompt) until its failure, which it meets on
batch ``FAKE_FAIL_BATCH`` (an environment variable, default 2, counted from 0 in this process).
"""
