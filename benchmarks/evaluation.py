"""Evaluation cost: the whole protocol on 10,000 clips, stage by stage, and evaluator training throughput.

* **Protocol**: ``handx.eval.protocol.evaluate`` on N test items (default 10,000: 1,000 synthetic clips, each
  repeated with small noise) with one generator of G = 1 group (the ground truth plus noise), 20 replications,
  the ``base`` evaluator (random weights: the cost does not depend on them). Every metric is computed; the
  stages are also timed one by one (text and motion embedding, clip contact labels, MPJPE, plausibility, the
  20 rounds of pool and pair metrics).
* **Evaluator training**: the network step (forward, §7.4 loss, backward, clipping, AdamW) on random batches of
  normalised motion and random text features of the GloVe width, for the ``tiny`` and ``base`` presets.

Prints one JSON line: ``python benchmarks/evaluation.py [--items N] [--device cpu]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from handx.eval import metrics, plausibility
from handx.eval.protocol import EvalSettings, evaluate
from handx.eval.submission import EvalSet
from handx.evaluator import Evaluator
from handx.models.evaluator import TMR, EvaluatorConfig
from handx.representations.positions126 import Preprocess
from handx.synth import generate_clip
from handx.text import load_text_encoder
from handx.train.evaluator import evaluator_loss


def make_set(items: int, unique: int = 1000, seed: int = 0) -> EvalSet:
    clips = [generate_clip(seed, i) for i in range(min(unique, items))]
    rng = np.random.default_rng(seed)
    rows = np.arange(items) % len(clips)
    motion = np.stack([clips[r].motion for r in rows]).astype(np.float32)
    motion += rng.normal(scale=0.001, size=motion.shape).astype(np.float32)
    texts = tuple([clips[r].texts[key][0] for r in rows] for key in ("left", "right", "two_hands_relation"))
    variants = tuple((triplet,) for triplet in zip(*texts))
    return EvalSet(tuple(f"c{i}" for i in range(items)), motion, texts, variants, {"store": "synthetic", "split": None,
                                                                                   "variant": 0, "items": items})


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def bench_protocol(items: int, device: str) -> dict:
    eval_set, make_s = timed(make_set, items)
    encoder = load_text_encoder("glove")
    config = EvaluatorConfig.preset("base")
    torch.manual_seed(0)
    preprocess = Preprocess("clip", np.zeros(126, np.float32), np.full(126, 0.1, np.float32))
    evaluator = Evaluator(TMR(config), preprocess, encoder, run=Path("random-base"), step=0,
                          text_encoder_spec="glove", device=torch.device(device))
    generated = eval_set.motion[:, None] + np.float32(0.01) * np.random.default_rng(1).normal(
        size=eval_set.motion[:, None].shape).astype(np.float32)  # (N, 1, T, 2, 21, 3)

    stages = {}
    text, stages["embed_text_s"] = timed(evaluator.embed_text, *eval_set.texts)
    motion, stages["embed_motion_s"] = timed(evaluator.embed_motion, generated[:, 0])
    _, stages["contact_labels_s"] = timed(metrics.clip_contact_labels, generated[:, 0])
    _, stages["mpjpe_s"] = timed(metrics.mpjpe, eval_set.motion, generated[:, 0])
    _, stages["plausibility_s"] = timed(plausibility.plausibility, generated[:, 0])

    def rounds():
        for r in range(20):
            rng = np.random.default_rng([0, r])
            metrics.r_precision(text, motion, order=rng.permutation(items))
            metrics.fid(text, motion)
            metrics.matching_score(text, motion)
            metrics.diversity(motion, rng=rng)

    _, stages["twenty_rounds_s"] = timed(rounds)
    report, total = timed(evaluate, evaluator, eval_set, {"noisy": generated},
                          settings=EvalSettings(replications=20), progress=False)
    assert np.isfinite(report.rows["noisy"]["fid"].mean)
    return {"items": items, "make_set_s": make_s, "evaluate_s": total, "items_per_s": items / total,
            "note": "evaluate scores the Real row and the generator (2 x N clips)", **stages}


def bench_training(device: str, steps: int = 5) -> dict:
    out = {}
    for preset, batch in (("tiny", 128), ("base", 128)):
        torch.manual_seed(0)
        model = TMR(EvaluatorConfig.preset(preset)).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        motion = torch.randn(batch, 60, 126, device=device)
        tokens = torch.randn(3, batch, 24, 50, device=device)
        mask = torch.ones(3, batch, 24, dtype=torch.bool, device=device)

        def step():
            noise = torch.randn(2, batch, model.config.latent, device=device)
            loss = evaluator_loss(motion, model(motion, tokens, mask, noise)).total
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()

        step()  # warm-up
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        out[preset] = {"batch": batch, "samples_per_s": batch * steps / seconds,
                       "parameters": sum(p.numel() for p in model.parameters())}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    result = {"protocol": bench_protocol(args.items, args.device), "training": bench_training(args.device),
              "device": args.device, "threads": torch.get_num_threads()}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
