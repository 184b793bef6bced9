"""Sampling time of the built-in generator at its default settings (DDIM 50 steps, guidance 2.5, projection onto
the skeleton), batched, on this machine: seconds per clip over ``--clips`` clips generated in batches of 64
(one warm-up batch first, not counted), with the texts of the synthetic corpus.

    python benchmarks/builtin_sampling.py            # prints one JSON line
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from handx.assets import DEFAULT_GENERATOR, default_run  # noqa: E402
from handx.motion import Triplet  # noqa: E402
from handx.sampling.generate import Generator  # noqa: E402
from handx.synth import generate_clip  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args(argv)
    generator = Generator.load(default_run("generator"))
    clips = [generate_clip(7, i) for i in range(args.clips)]
    texts = [Triplet(c.texts["left"][0], c.texts["right"][0], c.texts["two_hands_relation"][0]) for c in clips]
    generator.generate_batch(texts[:args.batch], batch_size=args.batch)  # warm-up (and the text encoder's load)
    t0 = time.perf_counter()
    out = generator.generate_batch(texts, batch_size=args.batch)
    seconds = time.perf_counter() - t0
    print(json.dumps({"benchmark": "builtin_sampling", "model": DEFAULT_GENERATOR, "clips": len(out),
                      "batch": args.batch, "seconds": round(seconds, 2),
                      "seconds_per_clip": round(seconds / len(out), 4),
                      "settings": "DDIM 50 steps, guidance 2.5, projection end",
                      "threads": torch.get_num_threads(), "machine": platform.machine()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
