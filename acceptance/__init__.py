"""Acceptance checks that need hardware the test suite cannot assume, run by hand on that hardware.

Run each from the repository root, as a module:

    python -m acceptance.gpu_memory_check      # a CUDA GPU: the harness's T4 emulation (exit 77 without one)
"""
