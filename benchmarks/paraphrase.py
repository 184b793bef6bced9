"""Paraphrase benchmark: does the generator follow descriptions written in other words than its training texts?

The six two-hand interactions of the synthetic corpus (clap, tip to tip, tip to palm, palms together, mirrored,
one hand holding while the other acts) are described below in hand-written words that the synthetic grammar
and the template writer never use; these texts are kept out of every training corpus (they live only in this
file). For each interaction the generator makes ``--samples`` clips from (a) the paraphrase and (b) the
corpus's own texts of held-out clips of that interaction. The evaluator embeds every clip; a generated clip is
classified as the interaction whose real clips' mean motion embedding is nearest. Reported: classification
accuracy for paraphrases and for corpus texts (chance 1/6), the same for real clips (the evaluator's ceiling),
and the fraction of frames with the hands in contact for each interaction that should touch.

    python benchmarks/paraphrase.py                                # built-in generator and evaluator
    python benchmarks/paraphrase.py --ckpt RUN --evaluator RUN
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from handx.assets import default_run, resolve_run  # noqa: E402
from handx.evaluator import Evaluator  # noqa: E402
from handx.motion import Triplet  # noqa: E402
from handx.sampling.generate import Generator  # noqa: E402
from handx.synth import generate_clip  # noqa: E402

#: Hand-written descriptions of each interaction (left, right, relation); never used for training.
PARAPHRASES: dict[str, Triplet] = {
    "clap": Triplet("The left hand swings over to slap the other hand.",
                   "The right hand swings over to slap the other hand.",
                   "Both palms meet in one clap, then the hands come apart."),
    "palms_together": Triplet("The left hand goes flat and presses against its partner.",
                             "The right hand goes flat and presses against its partner.",
                             "The two hands join flat palm against flat palm, as if praying."),
    "tip_to_tip": Triplet("The left hand reaches a fingertip toward the right hand.",
                         "The right hand reaches a fingertip toward the left hand.",
                         "A fingertip of one hand is brought against a fingertip of the other."),
    "tip_to_palm": Triplet("The left hand holds its palm open and waits.",
                          "The right hand aims a finger at the open left palm.",
                          "A right fingertip lands on the middle of the left palm."),
    "mirrored": Triplet("The left hand copies every gesture of the right one.",
                       "The right hand copies every gesture of the left one.",
                       "The hands perform identical gestures as reflections of one another."),
    "hold_and_act": Triplet("The left hand stays frozen in place.",
                           "The right hand keeps working its fingers.",
                           "One hand is motionless while the other keeps gesturing."),
}
TOUCHING = ("clap", "palms_together", "tip_to_tip", "tip_to_palm")
HELD_OUT_SEED = 424242  # a corpus seed the built-in recipe never uses


def contact_fraction(motion: np.ndarray, threshold: float = 0.02) -> float:
    """Fraction of frames where some joint of one hand is within ``threshold`` metres of the other hand."""
    left, right = motion[:, :, 0], motion[:, :, 1]  # (N, T, 21, 3)
    distance = np.linalg.norm(left[:, :, :, None] - right[:, :, None], axis=-1).min(axis=(2, 3))  # (N, T)
    return float((distance < threshold).mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", default=None, help="generator run or built-in name (default: the built-in)")
    parser.add_argument("--evaluator", default=None, help="evaluator run or built-in name (default: built-in)")
    parser.add_argument("--samples", type=int, default=16, help="clips per interaction and text kind")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the generator's)")
    args = parser.parse_args(argv)
    gen_run = resolve_run(args.ckpt, kind="generator") if args.ckpt else default_run("generator")
    ev_run = resolve_run(args.evaluator, kind="evaluator") if args.evaluator else default_run("evaluator")
    generator, evaluator = Generator.load(gen_run), Evaluator.load(ev_run)
    kinds = list(PARAPHRASES)
    real, corpus_texts = {}, {}
    for k, kind in enumerate(kinds):
        clips = [generate_clip(HELD_OUT_SEED, k * 1000 + i, kind=kind) for i in range(args.samples)]
        real[kind] = np.stack([c.motion for c in clips]).astype(np.float32)
        corpus_texts[kind] = [Triplet(c.texts["left"][0], c.texts["right"][0], c.texts["two_hands_relation"][0])
                              for c in clips]
    centroids = np.stack([evaluator.embed_motion(real[kind]).mean(axis=0) for kind in kinds])  # (K, D)

    def accuracy(motions: dict[str, np.ndarray]) -> tuple[float, dict[str, float]]:
        per = {}
        for k, kind in enumerate(kinds):
            mu = evaluator.embed_motion(motions[kind])  # (n, D)
            nearest = np.linalg.norm(mu[:, None] - centroids[None], axis=-1).argmin(axis=1)
            per[kind] = float((nearest == k).mean())
        return float(np.mean(list(per.values()))), per

    sample = {} if args.steps is None else {"steps": args.steps}
    from_paraphrase = {kind: generator.generate_batch([PARAPHRASES[kind]] * args.samples, seed=k, **sample)
                       for k, kind in enumerate(kinds)}
    from_corpus = {kind: generator.generate_batch(corpus_texts[kind], seed=k, **sample)
                   for k, kind in enumerate(kinds)}
    result = {"benchmark": "paraphrase", "generator": str(gen_run), "evaluator": str(ev_run),
              "samples_per_interaction": args.samples, "chance": round(1 / len(kinds), 3)}
    for name, motions in (("real", real), ("corpus_texts", from_corpus), ("paraphrases", from_paraphrase)):
        mean, per = accuracy(motions)
        result[name] = {"accuracy": round(mean, 3), "per_interaction": {k: round(v, 3) for k, v in per.items()},
                        "contact_fraction": {k: round(contact_fraction(motions[k]), 3) for k in TOUCHING}}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
