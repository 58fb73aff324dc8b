#!/usr/bin/env python3
"""Summarise a py-spy collapsed-stack file (`py-spy record --format raw`, or run.py --profile DIR).

    python3 bench/profile_summary.py DIR/roomkeeper_admin.txt [--top 25] [--filter TEXT]

Prints the functions with the most samples on CPU: "self" (the frame was running) and "total"
(anywhere on the stack), as percentages of all samples (idle samples are included when py-spy
recorded them).  --filter keeps only stacks containing TEXT (e.g. a function name).
"""

from __future__ import annotations

import argparse
import collections
import re
import signal
import sys


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--filter", default=None)
    a = ap.parse_args()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` is fine
    self_c: collections.Counter[str] = collections.Counter()
    total_c: collections.Counter[str] = collections.Counter()
    n = 0
    with open(a.file) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            if a.filter and a.filter not in stack:
                continue
            c = int(count)
            n += c
            frames = [re.sub(r" \(/.*?/(src/|site-packages/|lib/python3\.\d+/)", " (", fr) for fr in stack.split(";")]
            self_c[frames[-1]] += c
            for fr in set(frames):
                total_c[fr] += c
    if not n:
        print("no samples")
        return 1
    print(f"{n} samples")
    print("--- self")
    for fr, c in self_c.most_common(a.top):
        print(f"{100 * c / n:5.1f}%  {fr}")
    print("--- total")
    for fr, c in total_c.most_common(a.top):
        print(f"{100 * c / n:5.1f}%  {fr}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
