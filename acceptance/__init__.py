"""Acceptance checks that need hardware the test suite cannot assume, run by hand on that hardware.

Run each from the repository root, as a module:

    python -m acceptance.gpu_memory_check      # a CUDA GPU: the harness's T4 emulation (exit 77 without one)

gpu_memory_check.py runs the checks; gpu_check_judges.py holds their table and judges (tested on the CPU in
tests/acceptance/); gpu_check_models.py the model they run; gpu_wheels.txt the wheels a GPU machine without a
package index needs, with the ``pip download`` command that fetches them.
"""
