#!/usr/bin/env python3
"""The container's command: the kit's model loop over stdin and stdout, nothing more.

    python3 docker/entrypoint.py

The grader (a host process outside the container, the judge) sends the job and each batch's prompts over
the container's stdin and reads the answers on its stdout; the model's own prints go to stderr, the log.
The loop builds the model, answers what it is asked and exits; it reads no file of the run and writes none:
every verdict, clock and result is the host's. See submission/harness/child.py (the loop),
submission/harness/protocol.py (the messages) and submission/grading/container_contract.py.

Exit status: 0 the judge said end; 1 the model failed (the error was sent on the channel); 2 no job came.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from submission.harness.child import main

if __name__ == "__main__":
    sys.exit(main(["--stdio"]))
