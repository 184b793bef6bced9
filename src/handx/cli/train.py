"""``handx train diffusion|tokenizer|ar|evaluator``: train a generator family, its tokenizer, or the benchmark's
evaluator."""

from __future__ import annotations

import argparse
from pathlib import Path

from handx.cli import options


def register(groups: argparse._SubParsersAction) -> None:
    train = groups.add_parser("train", help="train a generator or the evaluator",
                              description="Train a generator, or the text-motion evaluator that scores generators, "
                                          "on an annotated store. On several GPUs or nodes, launch the same command "
                                          "through torchrun (DDP).")
    kinds = train.add_subparsers(dest="kind", metavar="MODEL", required=True)
    p = kinds.add_parser(
        "diffusion", help="the treble-text diffusion generator",
        description="Train the x0-predicting diffusion generator (three text branches: left, right, relation) on "
                    "the texts of DIR. Checkpoints (safetensors + config JSON + optimiser state) go to RUN/; "
                    "re-running the same command resumes from the newest checkpoint with the same data order. "
                    "Multi-GPU: torchrun --nproc_per_node=N -m handx.cli.main train diffusion ...")
    p.add_argument("--data", type=Path, required=True, metavar="DIR", action="append",
                   help="annotated store (handx annotate); repeat to train on several stores at once (the first "
                        "one's held-out split validates)")
    p.add_argument("--out", type=Path, required=True, metavar="RUN", help="run directory")
    p.add_argument("--preset", default="tiny",
                   help="model size: tiny, cpu (the built-in model's), 4x256, 8x512, 12x512 (= base, the paper's "
                        "default), 16x768")
    p.add_argument("--steps", type=int, default=1000, help="optimiser steps in total (default 1000)")
    p.add_argument("--batch-size", type=int, default=64, help="global batch size (default 64)")
    p.add_argument("--lr", type=float, default=None,
                   help="peak AdamW learning rate (default: the preset's; 1e-3 for tiny and cpu, 1e-4 for the "
                        "paper's sizes)")
    p.add_argument("--schedule", default="cosine", choices=["cosine", "constant"],
                   help="learning rate after warm-up: cosine decay to --min-lr × lr (default) or constant")
    p.add_argument("--min-lr", type=float, default=0.1, help="final learning rate as a fraction of --lr (0.1)")
    p.add_argument("--contact-loss", type=float, default=0.0, metavar="WEIGHT",
                   help="weight of the intra-hand contact term (true thumb-tip contacts keep their distance; "
                        "docs/training.md); 0 (default) is the reference loss")
    p.add_argument("--warmup", type=int, default=100, help="linear warm-up steps (default 100)")
    p.add_argument("--save-every", type=int, default=500, help="steps between checkpoints (default 500)")
    p.add_argument("--stop-at", type=int, default=None, metavar="STEP",
                   help="stop after STEP with a checkpoint, as an interruption would (the schedule still spans "
                        "--steps); the same command without it continues, e.g. to train across sessions")
    p.add_argument("--keep", type=int, default=3,
                   help="checkpoints kept (the newest; default 3), e.g. more to score a learning curve afterwards")
    p.add_argument("--eval-every", type=int, default=500,
                   help="steps between held-out checks: the EMA model's loss on --val-split, and with "
                        "--val-evaluator the R-precision of generated clips; the best step is kept in RUN/best")
    p.add_argument("--val-split", default="test", help="held-out split of the first store ('none': no checks)")
    p.add_argument("--val-items", type=int, default=128, help="held-out clips per check (default 128)")
    p.add_argument("--val-evaluator", default=None, metavar="RUN",
                   help="evaluator run (or built-in name) that scores generated held-out clips during training")
    p.add_argument("--workers", type=int, default=0,
                   help="DataLoader processes that gather batches ahead of the network (default 0: in the "
                        "training process; gathering is by index, so 0 is fast on a CPU)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="train",
                   help="store split to train on when the store has splits ('none': every clip)")
    p.add_argument("--data-fraction", type=float, default=1.0, metavar="F",
                   help="train on this fraction of the clips (0-1; nested across fractions; default 1)")
    p.add_argument("--text-encoder", default="minilm", type=options.text_encoder,
                   help="minilm (offline default), glove, or hf:<local model path>")
    p.add_argument("--device", default="auto", type=options.device_or_auto,
                   help="auto, cpu or cuda (default auto: cuda when torch sees a GPU)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_train_diffusion)

    e = kinds.add_parser(
        "evaluator", help="the text-motion evaluator (the benchmark's judge)",
        description="Train the TMR-style evaluator (a text encoder and a motion encoder into one latent space; "
                    "handx eval ranks generations with it) on the texts of DIR. GloVe word vectors feed the text "
                    "side; the motion preprocessing is fitted on the training clips and stored in RUN/config.json, "
                    "so evaluation uses exactly the same function. Re-running the same command resumes from the "
                    "newest checkpoint. Multi-GPU: torchrun --nproc_per_node=N -m handx.cli.main train evaluator ...")
    e.add_argument("--data", type=Path, required=True, metavar="DIR", help="annotated store (handx annotate)")
    e.add_argument("--out", type=Path, required=True, metavar="RUN", help="run directory")
    e.add_argument("--preset", default="base", choices=["tiny", "small", "base"],
                   help="model size: tiny (tests), small (CPU: e.g. --lr 1e-3 --warmup 50 --batch-size 64 "
                        "--steps 600 on 3000 clips), base (the reference's 256-d, 4 layers, for a GPU; default)")
    e.add_argument("--steps", type=int, default=10_000, help="optimiser steps in total (default 10000)")
    e.add_argument("--batch-size", type=int, default=128,
                   help="global batch size; the other clips of a batch are the contrastive negatives (default 128)")
    e.add_argument("--lr", type=float, default=1e-4, help="AdamW learning rate (default 1e-4)")
    e.add_argument("--warmup", type=int, default=0, help="linear warm-up steps (default 0)")
    e.add_argument("--centring", default="clip", choices=["clip", "frame"],
                   help="clip: subtract the right wrist of frame 0, keeping the wrists' paths (default); frame: "
                        "subtract the right wrist of every frame, as the reference evaluator")
    e.add_argument("--split", default="train",
                   help="store split to train on when the store has splits ('none': every clip)")
    e.add_argument("--val-split", default="test",
                   help="split whose first 32 clips are retrieved among each other every --eval-every steps and "
                        "logged to RUN/metrics.jsonl ('none': no validation; skipped when the store lacks it)")
    e.add_argument("--eval-every", type=int, default=500, help="steps between validation numbers (default 500)")
    e.add_argument("--save-every", type=int, default=1000, help="steps between checkpoints (default 1000)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--device", default="auto", type=options.device_or_auto,
                   help="auto, cpu or cuda (default auto: cuda when torch sees a GPU)")
    e.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    e.set_defaults(func=_train_evaluator)

    t = kinds.add_parser(
        "tokenizer", help="the FSQ motion tokenizer of the autoregressive family",
        description="Train the 1-D convolutional FSQ tokenizer (reference §6.1-6.3; 2 frames per code) on the "
                    "local288 features of the clips of DIR (texts are not needed), on random --window-frame "
                    "windows. Every --eval-every steps the held-out clips (--val-split of --val-data, default the "
                    "first store) are reconstructed at full length: per-hand root-relative MPJPE, codebook usage "
                    "and perplexity go to RUN/metrics.jsonl, and the best step by MPJPE to RUN/best. Re-running "
                    "resumes. Multi-GPU: torchrun --nproc_per_node=N -m handx.cli.main train tokenizer ...")
    t.add_argument("--data", type=Path, required=True, metavar="DIR", action="append",
                   help="store of clips; repeat to pool several stores")
    t.add_argument("--out", type=Path, required=True, metavar="RUN", help="run directory")
    t.add_argument("--preset", default="small", choices=["tiny", "small", "paper"],
                   help="tiny (tests), small (CPU; default), paper (width 512, the reference's)")
    t.add_argument("--steps", type=int, default=3000, help="optimiser steps in total (default 3000)")
    t.add_argument("--batch-size", type=int, default=128, help="global batch of windows (default 128)")
    t.add_argument("--window", type=int, default=48, help="frames per training window (default 48, as reference)")
    t.add_argument("--lr", type=float, default=1e-3, help="peak AdamW learning rate (default 1e-3; reference 2e-4)")
    t.add_argument("--warmup", type=int, default=100, help="linear warm-up steps (default 100), then cosine decay")
    t.add_argument("--val-data", type=Path, default=None, metavar="DIR",
                   help="store whose --val-split clips validate (default: the first --data)")
    t.add_argument("--val-split", default="test", help="held-out split ('none': no checks)")
    t.add_argument("--val-clips", type=int, default=256, help="held-out clips per check (default 256)")
    t.add_argument("--balance-stores", action="store_true",
                   help="draw each window's store uniformly, then a clip of it, so the real captures beside a large "
                        "synthetic corpus are seen as often (default: clips uniformly)")
    _common(t, save_every=500)
    t.set_defaults(func=_train_tokenizer)

    a = kinds.add_parser(
        "ar", help="the autoregressive text-prefix LM over FSQ codes",
        description="Train the prefix LM (reference §6.5-6.6: RMSNorm, RoPE, SwiGLU; the three texts' token "
                    "features as a bidirectional prefix with separators, causal over motion codes) on the codes of "
                    "a trained tokenizer (--tokenizer RUN, copied into RUN/tokenizer so the run is self-contained) "
                    "and the texts of DIR. Each text branch is dropped with probability --cond-drop for "
                    "classifier-free guidance. Held-out loss and token accuracy every --eval-every steps; the "
                    "best step by loss goes to RUN/best. Re-running resumes. Multi-GPU: torchrun "
                    "--nproc_per_node=N -m handx.cli.main train ar ...")
    a.add_argument("--data", type=Path, required=True, metavar="DIR", action="append",
                   help="annotated store; repeat to pool several stores (the first one's held-out split validates)")
    a.add_argument("--tokenizer", required=True, metavar="RUN", help="tokenizer run (handx train tokenizer)")
    a.add_argument("--out", type=Path, required=True, metavar="RUN", help="run directory")
    a.add_argument("--preset", default="tiny",
                   help="tiny, small (CPU), or the paper's 44M, 111M (= base), 222M, 343M, 775M, 1B, 3B (default tiny)")
    a.add_argument("--steps", type=int, default=3000, help="optimiser steps in total (default 3000)")
    a.add_argument("--batch-size", type=int, default=64, help="global batch size (default 64)")
    a.add_argument("--lr", type=float, default=1e-3, help="peak AdamW learning rate (default 1e-3; reference 3e-4)")
    a.add_argument("--warmup", type=int, default=100, help="linear warm-up steps (default 100), then cosine to 0")
    a.add_argument("--cond-drop", type=float, default=0.1,
                   help="probability each text branch is dropped in training (default 0.1; 0: no guidance)")
    a.add_argument("--val-split", default="test", help="held-out split of the first store ('none': no checks)")
    a.add_argument("--val-items", type=int, default=256, help="held-out items per check (default 256)")
    a.add_argument("--data-fraction", type=float, default=1.0, metavar="F",
                   help="train on this fraction of the clips (0-1; nested across fractions; default 1)")
    a.add_argument("--text-encoder", default="minilm", type=options.text_encoder,
                   help="minilm (offline default), glove, or hf:<local model path>")
    _common(a, save_every=500)
    a.set_defaults(func=_train_ar)


def _common(p: argparse.ArgumentParser, *, save_every: int) -> None:
    """The options every runner-based training command shares."""
    p.add_argument("--eval-every", type=int, default=500, help="steps between held-out checks (default 500)")
    p.add_argument("--save-every", type=int, default=save_every,
                   help=f"steps between checkpoints (default {save_every})")
    p.add_argument("--keep", type=int, default=3, help="checkpoints kept (the newest; default 3)")
    p.add_argument("--stop-at", type=int, default=None, metavar="STEP",
                   help="stop after STEP with a checkpoint (the schedule still spans --steps); the same command "
                        "without it continues")
    p.add_argument("--split", default="train",
                   help="store split to train on when the store has splits ('none': every clip)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", type=options.device_or_auto,
                   help="auto, cpu or cuda (default auto: cuda when torch sees a GPU)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _train_diffusion(args: argparse.Namespace) -> int:
    from handx.train.diffusion import TrainConfig, train_diffusion

    from handx.models.diffusion import default_lr

    cfg = TrainConfig(data=tuple(str(d) for d in args.data), out=str(args.out), preset=args.preset,
                      steps=args.steps, batch_size=args.batch_size,
                      lr=args.lr if args.lr is not None else default_lr(args.preset), schedule=args.schedule,
                      min_lr=args.min_lr, contact_loss=args.contact_loss, warmup=args.warmup,
                      save_every=args.save_every, keep=args.keep,
                      eval_every=args.eval_every, stop_at=args.stop_at,
                      val_split=None if args.val_split == "none" else args.val_split, val_items=args.val_items,
                      val_evaluator=args.val_evaluator, workers=args.workers, seed=args.seed,
                      split=None if args.split == "none" else args.split, text_encoder=args.text_encoder,
                      data_fraction=args.data_fraction,
                      device=args.device)
    result = train_diffusion(cfg, progress=not args.no_progress)
    print(f"trained to step {result.step} in {result.run}"
          + (f" (last loss {result.last_loss:.4f})" if result.last_loss is not None else ""))
    return 0


def _train_evaluator(args: argparse.Namespace) -> int:
    from handx.train.evaluator import EvaluatorTrainConfig, train_evaluator

    cfg = EvaluatorTrainConfig(data=str(args.data), out=str(args.out), preset=args.preset, steps=args.steps,
                               batch_size=args.batch_size, lr=args.lr, warmup=args.warmup, centring=args.centring,
                               seed=args.seed, save_every=args.save_every, eval_every=args.eval_every,
                               split=None if args.split == "none" else args.split,
                               val_split=None if args.val_split == "none" else args.val_split, device=args.device)
    result = train_evaluator(cfg, progress=not args.no_progress)
    print(f"trained to step {result.step} in {result.run}"
          + (f" (last loss {result.last_loss:.4f})" if result.last_loss is not None else ""))
    return 0


def _none(value: str) -> str | None:
    return None if value == "none" else value


def _train_tokenizer(args: argparse.Namespace) -> int:
    from handx.train.tokenizer import TokenizerTrainConfig, train_tokenizer

    cfg = TokenizerTrainConfig(data=tuple(str(d) for d in args.data), out=str(args.out), preset=args.preset,
                               steps=args.steps, batch_size=args.batch_size, window=args.window, lr=args.lr,
                               warmup=args.warmup, seed=args.seed, save_every=args.save_every, keep=args.keep,
                               eval_every=args.eval_every, split=_none(args.split),
                               val_data=None if args.val_data is None else str(args.val_data),
                               val_split=_none(args.val_split), val_clips=args.val_clips,
                               balance_stores=args.balance_stores, stop_at=args.stop_at,
                               device=args.device)
    result = train_tokenizer(cfg, progress=not args.no_progress)
    print(f"trained to step {result.step} in {result.run}"
          + (f" (last loss {result.last_loss:.4f})" if result.last_loss is not None else ""))
    return 0


def _train_ar(args: argparse.Namespace) -> int:
    from handx.train.ar import ARTrainConfig, train_ar

    cfg = ARTrainConfig(data=tuple(str(d) for d in args.data), out=str(args.out), tokenizer=str(args.tokenizer),
                        preset=args.preset, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                        warmup=args.warmup, cond_drop=args.cond_drop, seed=args.seed, save_every=args.save_every,
                        keep=args.keep, eval_every=args.eval_every, text_encoder=args.text_encoder,
                        split=_none(args.split), val_split=_none(args.val_split), val_items=args.val_items,
                        data_fraction=args.data_fraction,
                        stop_at=args.stop_at, device=args.device)
    result = train_ar(cfg, progress=not args.no_progress)
    print(f"trained to step {result.step} in {result.run}"
          + (f" (last loss {result.last_loss:.4f})" if result.last_loss is not None else ""))
    return 0
