"""Training data path benchmark: diffusion training throughput on a real store against the bare network step.

For each preset (``tiny`` and the built-in ``cpu``), batch 64, three ways of feeding one optimiser step
(forward, loss, backward, clipping, AdamW), measured side by side in one process, in interleaved blocks so
that a load change on the machine hits every way alike:

* ``bare``: random tensors of the store's shapes (features (64, 60, 168); text tokens (3, 64, L, 384) with L the
  longest text of a real batch): the network alone;
* ``store``: batches gathered by index from the store's precomputed side files (motion features and MiniLM
  token features, :meth:`handx.train.data.TextMotionData.prepare`), as ``handx train diffusion`` does;
* ``encode`` (tiny only): batches whose texts are run through MiniLM each step, as training did before the
  side files whenever a corpus had more distinct texts than the text cache held.

    python benchmarks/train_data.py --store runs/builtin/synth      # a prepared store (the recipe's)
    python benchmarks/train_data.py                                  # makes and prepares 1,000 synthetic clips

Prints one JSON line: samples/s of each way and the ratio store / bare.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from handx.models.diffusion import DiffusionConfig, TrebleDenoiser  # noqa: E402
from handx.text import encode_branches, load_text_encoder  # noqa: E402
from handx.train.data import TextMotionData  # noqa: E402
from handx.train.losses import diffusion_loss  # noqa: E402

BATCH = 64


def step(model, optimizer, x0, tokens, mask, alphas, gen) -> None:
    t = torch.randint(0, 1000, (x0.shape[0],), generator=gen)
    noise = torch.randn(x0.shape, generator=gen)
    a = alphas[t].view(-1, 1, 1)
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
    loss = diffusion_loss(x0, model(x_t, t, tokens, mask, None)).total
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=None, help="prepared store (default: make 1,000 clips)")
    parser.add_argument("--steps", type=int, default=6, help="steps per block (default 6)")
    parser.add_argument("--blocks", type=int, default=4, help="interleaved blocks per way (default 4)")
    parser.add_argument("--presets", default="tiny,cpu")
    args = parser.parse_args(argv)
    from handx.sampling.schedule import cosine_betas

    torch.manual_seed(0)
    encoder = load_text_encoder("minilm")
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store
        if store is None:
            from handx.synth.corpus import write_synthetic

            store = Path(tmp) / "store"
            write_synthetic(1000, 0, store, progress=False)
        data = TextMotionData(store)
        t0 = time.perf_counter()
        data.prepare(encoder, progress=False)
        prepare_s = time.perf_counter() - t0
        stats = data.fit_stats()
        alphas = torch.cumprod(1 - cosine_betas(1000), 0).float()
        result = {"benchmark": "train_data", "store": str(args.store or "1000 synthetic clips"),
                  "items": len(data), "prepare_s": round(prepare_s, 1), "batch": BATCH,
                  "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"}
        for preset in args.presets.split(","):
            model = TrebleDenoiser(DiffusionConfig.preset(preset))
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
            gen = torch.Generator().manual_seed(0)
            first = data.batch(data.step_rows(0, BATCH, 0), stats)
            length = first.tokens.shape[2]
            bare = (torch.randn(BATCH, 60, 168), torch.randn(3, BATCH, length, 384),
                    torch.ones(3, BATCH, length, dtype=torch.bool))
            ways = ["bare", "store"] + (["encode"] if preset == "tiny" else [])
            seconds = {w: 0.0 for w in ways}
            counter = 1
            step(model, optimizer, *bare, alphas, gen)  # warm-up
            for _ in range(args.blocks):
                for way in ways:
                    t0 = time.perf_counter()
                    for _ in range(args.steps):
                        if way == "bare":
                            step(model, optimizer, *bare, alphas, gen)
                            continue
                        batch = data.batch(data.step_rows(counter, BATCH, 0), stats)
                        counter += 1
                        x0 = torch.from_numpy(batch.features)
                        if way == "store":
                            step(model, optimizer, x0, batch.tokens, batch.mask, alphas, gen)
                        else:
                            step(model, optimizer, x0, *encode_branches(encoder, batch.texts), alphas, gen)
                    seconds[way] += time.perf_counter() - t0
            rates = {w: BATCH * args.steps * args.blocks / s for w, s in seconds.items()}
            result[preset] = {**{f"{w}_samples_per_s": round(r, 1) for w, r in rates.items()},
                              "store_over_bare": round(rates["store"] / rates["bare"], 3),
                              "text_tokens": int(length)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
