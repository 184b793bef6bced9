"""Resident memory of a CPU evaluator training run with and without handing freed memory back to the OS.

Runs ``train_evaluator`` (``small`` preset, batch 64, lr 1e-3) for ``--steps`` steps on a synthetic store, once
with ``trim_every=0`` (never) and once with the default ``trim_every=25`` (``handx.train.memory``), each in a fresh
process, and reports the resident size (RSS) every 25 steps and the wall time. Prints one JSON line.

    python benchmarks/train_memory.py [--steps 100] [--clips 1000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, sys, time
import handx.train.evaluator as te

def rss_gb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 1e9

samples, count = [], [0]
original = te.evaluator_loss

def counted(*args, **kwargs):
    count[0] += 1
    if count[0] % 25 == 0:
        samples.append(round(rss_gb(), 3))
    return original(*args, **kwargs)

te.evaluator_loss = counted
store, out, steps, trim = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
t0 = time.perf_counter()
te.train_evaluator(te.EvaluatorTrainConfig(data=store, out=out, preset="small", steps=steps, batch_size=64, lr=1e-3,
                                           save_every=10**9, eval_every=10**9, trim_every=trim, split=None),
                   progress=False)
print(json.dumps({"rss_gb_every_25_steps": samples, "seconds": time.perf_counter() - t0}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--clips", type=int, default=1000)
    args = parser.parse_args()
    from handx.synth.corpus import write_synthetic

    with tempfile.TemporaryDirectory() as work:
        store = Path(work) / "store"
        write_synthetic(args.clips, 0, store, progress=False)
        result = {"steps": args.steps, "clips": args.clips, "preset": "small", "batch": 64}
        for name, trim in (("never", 0), ("every_25", 25)):
            run = subprocess.run([sys.executable, "-c", CHILD, str(store), str(Path(work) / name), str(args.steps),
                                  str(trim)], capture_output=True, text=True, check=True)
            result[name] = json.loads(run.stdout.strip().splitlines()[-1])
    print(json.dumps(result))


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
