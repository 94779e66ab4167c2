#!/usr/bin/env python3
"""How long the bootstrap intervals take: 1,000 resamples (the default) of about 20,000 questions.

57 tasks of 350 questions (the full ShopBench's size), every tenth a micro-F1 task, spread over the
four tracks; both the single-run intervals and the paired comparison of two runs are timed.

    python -m benchmarks.bootstrap_speed [--resamples 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from submission.reports.intervals import TaskSamples, bootstrap, paired_bootstrap
from submission.scoring.data import TRACKS


def tasks(seed: int, n: int = 350) -> list[TaskSamples]:
    rng = np.random.default_rng(seed)
    out, row = [], 0
    for i in range(57):
        rows = tuple(range(row, row + n))
        if i % 10 == 0:
            out.append(TaskSamples(f"t{i}", TRACKS[i % 4], "micro-f1", rows, rng.integers(0, 3, size=(n, 3))))
        else:
            out.append(TaskSamples(f"t{i}", TRACKS[i % 4], "mean", rows, rng.random(n)))
        row += n
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    a, b = tasks(0), tasks(1)
    questions = sum(len(t.rows) for t in a)
    for name, run in (("intervals", lambda: bootstrap(a, seed=0, resamples=args.resamples)),
                      ("paired compare", lambda: paired_bootstrap(a, b, seed=0, resamples=args.resamples))):
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
        print(f"{name:>15}: {args.resamples:,} resamples of {questions:,} questions: "
              f"median {sorted(times)[len(times) // 2]:.2f} s, max {max(times):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
