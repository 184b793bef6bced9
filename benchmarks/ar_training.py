"""AR training data path benchmark: the autoregressive family's training throughput through the shared runner on a
real store, against the bare network step.

Two families, each preset measured side by side in one process:

* tokenizer (``handx train tokenizer``, presets ``tiny`` and ``small``, batch 128 windows of 48 frames): windows/s
  of :func:`handx.train.tokenizer.train_tokenizer` on a fresh run directory (windows drawn from the store's
  ``local288`` side file, normalised, the §6.3 loss, the runner's schedule, clipping, AdamW, logging) against the
  bare step: :func:`handx.train.tokenizer.tokenizer_step` on one random batch of the same shape, then backward,
  clipping and AdamW;
* prefix LM (``handx train ar``, presets ``tiny`` and ``small``, batch 64): samples/s of
  :func:`handx.train.ar.train_ar` with the ``small`` tokenizer trained above for a few steps (codes of every clip
  encoded once at setup, texts gathered from the store's MiniLM side file, per-branch text dropout) against its
  bare step: :func:`handx.train.ar.ar_step` on random codes ``(64, 30)`` and random text features ``(3, 64, L,
  384)`` (L the median padded text length of the run's batches), same model config, same optimiser settings.

Timing of a runner run excludes its setup (data preparation, statistics, tokenizer copy and code encoding, model
construction), its first step (warm-up) and its last (final validation and checkpoint): the run's batch iterator
is wrapped to stamp the start of every step, and the rate is taken from the start of step 1 to the start of the
last step. Validation is off and no checkpoint falls inside that span. The bare step runs as many steps as are
timed of the run, in two blocks, one before and one after it, so that a load change on the machine hits both ways
alike (after one warm-up step).

    python benchmarks/ar_training.py                          # imports ../shared/data into a temporary store
    python benchmarks/ar_training.py --store outputs/ar/real  # an existing (annotated) store

The default store is the real captures (``../shared/data`` or ``$HANDX_SHARED_DATA``: ManipNet BVH, Leap Motion,
MediaPipe) imported into a temporary store, described by the template writer and split by sequence (test 0.15).
With ``--store``, missing side files (``local288`` features, MiniLM text features) are computed into that store,
as training would. Prints one JSON line: windows/s or samples/s of each way and the ratio runner / bare.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import handx.train.ar as ar_train  # noqa: E402
import handx.train.tokenizer as tok_train  # noqa: E402
from handx.models.ar import ARConfig, PrefixLM  # noqa: E402
from handx.models.tokenizer import MotionTokenizer, TokenizerConfig  # noqa: E402
from handx.representations import local288  # noqa: E402
from handx.representations.stats import FeatureStats  # noqa: E402
from handx.runs import read_config  # noqa: E402
from handx.text import load_text_encoder  # noqa: E402
from handx.train.data import TextMotionData  # noqa: E402
from handx.train.runner import RunnerSettings, StepContext, param_groups  # noqa: E402

TOKENIZER_BATCH = 128
WINDOW = 48
AR_BATCH = 64
SHARED_DATA = Path(os.environ.get("HANDX_SHARED_DATA", ROOT.parent / "shared" / "data"))


def real_store(root: Path, shared: Path = SHARED_DATA) -> Path:
    """The real captures of ``shared`` imported into a store at ``root``, described and split (module docstring)."""
    from handx.cli.main import main as cli

    if not shared.is_dir():
        raise SystemExit(f"real capture data not found at {shared}: set HANDX_SHARED_DATA or pass --store DIR")
    commands = [["data", "import", str(shared / folder), "--format", fmt, "--out", str(root), "--no-progress"]
                for folder, fmt in (("manipnet", "bvh"), ("leap", "leap"), ("mediapipe", "mediapipe"))
                if (shared / folder).is_dir()]
    commands += [["annotate", str(root), "--writer", "template", "--no-progress"],
                 ["data", "split", str(root), "--test", "0.15"]]
    with contextlib.redirect_stdout(sys.stderr):  # the CLI's reports; stdout carries the JSON line
        for argv in commands:
            if cli(argv) != 0:
                raise SystemExit(f"handx {' '.join(argv)} failed")
    return root


@contextlib.contextmanager
def step_clock(module: Any) -> Iterator[list[float]]:
    """Within the block, the runner call of ``module`` (``module.fit``) stamps the start of every step (before its
    batch is made): the yielded list holds one ``perf_counter`` per step of the run."""
    stamps: list[float] = []
    original = module.fit

    def fit(job, *args, **kwargs):
        inner = job.batches

        def batches(start: int, end: int) -> Iterator[Any]:
            source = iter(inner(start, end))
            while True:
                stamps.append(time.perf_counter())
                try:
                    batch = next(source)
                except StopIteration:
                    stamps.pop()
                    return
                yield batch

        job.batches = batches
        return original(job, *args, **kwargs)

    module.fit = fit
    try:
        yield stamps
    finally:
        module.fit = original


def timed_rate(stamps: list[float], batch: int) -> tuple[float, int]:
    """Items/s from the start of step 1 to the start of the last step, and the number of steps timed."""
    if len(stamps) < 3:
        raise RuntimeError(f"the runner stamped {len(stamps)} steps; need at least 3 (did train_* stop calling fit?)")
    steps = len(stamps) - 2
    return batch * steps / (stamps[-1] - stamps[1]), steps


def bare_block(model: torch.nn.Module, step: Callable, batch: Any, settings: RunnerSettings,
               optimizer: torch.optim.Optimizer, steps: int, first: int) -> float:
    """Seconds of ``steps`` bare steps: the family's step function (forward, loss), backward, clipping, AdamW."""
    model.train()
    t0 = time.perf_counter()
    for k in range(first, first + steps):
        ctx = StepContext(k, 0, torch.device("cpu"), torch.Generator().manual_seed(k), contextlib.nullcontext)
        terms = step(model, batch, ctx)
        optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
        optimizer.step()
    return time.perf_counter() - t0


def side_by_side(run_fn: Callable[[], None], module: Any, batch_size: int, model: torch.nn.Module,
                 step: Callable, batch: Any, settings: RunnerSettings) -> dict[str, Any]:
    """Bare block, runner run (``settings.steps`` steps), bare block; rates of both ways."""
    bare_steps = max(1, -(-(settings.steps - 2) // 2))  # half the run's timed steps per block
    optimizer = torch.optim.AdamW(param_groups(model, settings.weight_decay), lr=settings.lr, betas=settings.betas,
                                  eps=settings.eps)
    bare_block(model, step, batch, settings, optimizer, 1, 0)  # warm-up
    before = bare_block(model, step, batch, settings, optimizer, bare_steps, 1)
    t0 = time.perf_counter()
    with step_clock(module) as stamps:
        run_fn()
    wall = time.perf_counter() - t0
    after = bare_block(model, step, batch, settings, optimizer, bare_steps, 1 + bare_steps)
    runner, timed = timed_rate(stamps, batch_size)
    bare = batch_size * 2 * bare_steps / (before + after)
    return {"runner": runner, "bare": bare, "ratio": runner / bare, "timed_steps": timed, "bare_steps": 2 * bare_steps,
            "bare_blocks": [batch_size * bare_steps / before, batch_size * bare_steps / after],
            "run_wall_s": wall, "setup_s": stamps[0] - t0, "steps": len(stamps)}


def bench_tokenizer(store: Path, work: Path, preset: str, steps: int) -> dict[str, Any]:
    out = work / f"tokenizer-{preset}"
    cfg = tok_train.TokenizerTrainConfig(data=str(store), out=str(out), preset=preset, steps=steps,
                                         batch_size=TOKENIZER_BATCH, window=WINDOW, warmup=min(100, steps),
                                         save_every=steps, eval_every=steps, val_split=None)
    # The bare model and its loss's statistics: the run's own (fitted on the store, as the run fits them).
    data = tok_train.clip_data(cfg.stores, cfg.split)
    stats = data.fit_stats()
    torch.manual_seed(0)
    model = MotionTokenizer(TokenizerConfig.preset(preset))
    windows = np.random.default_rng(0).standard_normal((TOKENIZER_BATCH, WINDOW, local288.NUM_FEATURES)).astype(
        np.float32)  # normalised features are roughly unit normal
    r = side_by_side(lambda: tok_train.train_tokenizer(cfg, progress=False), tok_train, TOKENIZER_BATCH, model,
                     tok_train.tokenizer_step(stats, torch.device("cpu")), windows, cfg.runner_settings())
    saved = FeatureStats.from_json(read_config(out)["stats"])
    assert np.allclose(np.asarray(saved.mean), np.asarray(stats.mean))  # the bare loss used the run's statistics
    config = TokenizerConfig.preset(preset)
    return {"parameters": sum(p.numel() for p in model.parameters()), "codebook": config.codebook_size,
            "frames_per_token": config.frames_per_token, "runner_windows_per_s": round(r["runner"], 1),
            "bare_windows_per_s": round(r["bare"], 1), "runner_over_bare": round(r["ratio"], 3),
            "bare_blocks_windows_per_s": [round(x, 1) for x in r["bare_blocks"]], "steps": r["steps"],
            "timed_steps": r["timed_steps"], "bare_steps": r["bare_steps"], "setup_s": round(r["setup_s"], 1),
            "run_wall_s": round(r["run_wall_s"], 1)}


def bench_ar(store: Path, work: Path, tokenizer: Path, preset: str, steps: int, encoder, data: TextMotionData
             ) -> dict[str, Any]:
    out = work / f"ar-{preset}"
    cfg = ar_train.ARTrainConfig(data=str(store), out=str(out), tokenizer=str(tokenizer), preset=preset,
                                 steps=steps, batch_size=AR_BATCH, warmup=min(100, steps), save_every=steps,
                                 eval_every=steps, val_split=None)
    # The run's model config (codebook and text width from the tokenizer and encoder, 30 codes per clip) is known
    # only after its setup; the bare model is built from the same preset and the tokenizer's codebook here and
    # checked against the run's config afterwards.
    tok_cfg = TokenizerConfig.from_json(read_config(tokenizer)["model"])
    codes_per_clip = int(data.clip_features(data.clip_keys[:1]).shape[1]) // tok_cfg.frames_per_token
    model_cfg = dataclasses.replace(ARConfig.preset(preset), codebook=tok_cfg.codebook_size, text_dim=encoder.dim,
                                    max_tokens=codes_per_clip, cond_drop=cfg.cond_drop)
    lengths = [int(data.text_batch(data.step_rows(k, AR_BATCH, cfg.seed))[0].shape[2]) for k in range(1, steps - 1)]
    length = int(statistics.median(lengths))
    gen = torch.Generator().manual_seed(0)
    batch = ar_train.CodeBatch(torch.randint(0, tok_cfg.codebook_size, (AR_BATCH, codes_per_clip), generator=gen),
                               torch.randn(3, AR_BATCH, length, encoder.dim, generator=gen),
                               torch.ones(3, AR_BATCH, length, dtype=torch.bool))
    torch.manual_seed(0)
    model = PrefixLM(model_cfg)
    r = side_by_side(lambda: ar_train.train_ar(cfg, progress=False, text_encoder=encoder), ar_train, AR_BATCH, model,
                     ar_train.ar_step(cfg), batch, cfg.runner_settings())
    saved = ARConfig.from_json(read_config(out)["model"])
    assert saved == model_cfg, (saved, model_cfg)  # the bare network is the run's network
    return {"layers": model_cfg.layers, "width": model_cfg.width, "codebook": model_cfg.codebook,
            "parameters": sum(p.numel() for p in model.parameters()), "codes": codes_per_clip,
            "text_length_median": length, "text_length_range": [min(lengths), max(lengths)],
            "runner_samples_per_s": round(r["runner"], 1), "bare_samples_per_s": round(r["bare"], 1),
            "runner_over_bare": round(r["ratio"], 3),
            "bare_blocks_samples_per_s": [round(x, 1) for x in r["bare_blocks"]], "steps": r["steps"],
            "timed_steps": r["timed_steps"], "bare_steps": r["bare_steps"], "setup_s": round(r["setup_s"], 1),
            "run_wall_s": round(r["run_wall_s"], 1)}


def run(store: Path | None = None, *, tokenizer_presets: tuple[str, ...] = ("tiny", "small"),
        ar_presets: tuple[str, ...] = ("tiny", "small"), tokenizer_steps: int = 20, ar_steps: int = 12,
        ar_small_steps: int = 6) -> dict[str, Any]:
    """Both families side by side (module docstring); the result as a dict."""
    t_start = time.perf_counter()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="handx-ar-training-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        source = str(store) if store is not None else "the real captures of shared/data"
        store = store if store is not None else real_store(work / "real")
        import_s = time.perf_counter() - t0
        encoder = load_text_encoder("minilm")
        t0 = time.perf_counter()
        data = TextMotionData(str(store), split="train", representation=local288.NAME)
        data.prepare(encoder, progress=False)  # the side files both families read (computed once per store)
        prepare_s = time.perf_counter() - t0
        result: dict[str, Any] = {
            "benchmark": "ar_training", "store": source, "clips": int(len(data.clip_keys)), "items": len(data),
            "import_s": round(import_s, 1), "prepare_s": round(prepare_s, 1), "tokenizer_batch": TOKENIZER_BATCH,
            "window": WINDOW, "ar_batch": AR_BATCH, "threads": torch.get_num_threads(), "torch": torch.__version__,
            "machine": platform.machine(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
            "tokenizer": {}, "ar": {}}
        for preset in tokenizer_presets:
            result["tokenizer"][preset] = bench_tokenizer(store, work, preset, tokenizer_steps)
            print(json.dumps({"tokenizer": preset, **result["tokenizer"][preset]}), file=sys.stderr, flush=True)
        trained = "small" if "small" in tokenizer_presets else tokenizer_presets[-1]
        result["ar_tokenizer"] = {"preset": trained, "steps": tokenizer_steps}
        for preset in ar_presets:
            steps = ar_small_steps if preset != "tiny" else ar_steps
            result["ar"][preset] = bench_ar(store, work, work / f"tokenizer-{trained}", preset, steps, encoder, data)
            print(json.dumps({"ar": preset, **result["ar"][preset]}), file=sys.stderr, flush=True)
    result["wall_s"] = round(time.perf_counter() - t_start, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=None,
                        help="an annotated store (default: import the real captures into a temporary one)")
    parser.add_argument("--tokenizer-presets", default="tiny,small")
    parser.add_argument("--ar-presets", default="tiny,small")
    parser.add_argument("--tokenizer-steps", type=int, default=20, help="runner steps per tokenizer run (default 20)")
    parser.add_argument("--ar-steps", type=int, default=12, help="runner steps of the tiny AR run (default 12)")
    parser.add_argument("--ar-small-steps", type=int, default=6,
                        help="runner steps of the other AR runs (default 6)")
    args = parser.parse_args(argv)
    if min(args.tokenizer_steps, args.ar_steps, args.ar_small_steps) < 3:
        parser.error("runner runs need at least 3 steps (the first and the last are not timed)")
    presets = {k: tuple(p for p in v.split(",") if p) for k, v in (("tok", args.tokenizer_presets),
                                                                  ("ar", args.ar_presets))}
    if not presets["tok"]:
        parser.error("the AR runs need a tokenizer: name at least one tokenizer preset")
    result = run(args.store, tokenizer_presets=presets["tok"], ar_presets=presets["ar"],
                 tokenizer_steps=args.tokenizer_steps, ar_steps=args.ar_steps, ar_small_steps=args.ar_small_steps)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
