"""A trained text–motion evaluator, loaded on its own from its run directory, as a pair of embedding functions.

Every benchmark metric (handx-reference.md §7.3) is computed on the μ embeddings of the evaluator's two encoders.
:class:`Evaluator` rebuilds the networks from the run's ``config.json`` alone (never from today's defaults, STYLE.md
6), preprocesses motions with the :class:`~handx.representations.positions126.Preprocess` recorded there (the
function and statistics it was trained with), encodes texts with the text encoder recorded there, and runs in eval
mode without gradients, so the same inputs always give the same embeddings. Train one with ``handx train
evaluator`` (:mod:`handx.train.evaluator`).

It stands above ``train/`` and ``eval/`` in the layout (DESIGN.md), beside :mod:`handx.runs`, because both use a
trained evaluator: training validates a generator with one (``TrainConfig.val_evaluator``) and the benchmark
scores every generator with one. It is not a network (those are in :mod:`handx.models.evaluator`): it reads a run
directory and a text encoder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from handx.errors import HandxInputError
from handx.models.evaluator import TMR, EvaluatorConfig
from handx.representations.positions126 import Preprocess
from handx.text import TextEncoder, load_text_encoder
from handx.text.encoder import check_texts
from handx.runs import CONFIG, load_checkpoint, open_run
from handx.text import encode_branches


class Evaluator:
    """Embeds motions and texts into the evaluator's latent space (``config.latent``-d, float64 μ).

    Attributes:
        model: the :class:`TMR` networks, in eval mode.
        config: their :class:`EvaluatorConfig`.
        preprocess: the motion preprocessing the evaluator was trained with.
        text_encoder: the frozen text encoder named in the run's config.
        run: the run directory; ``step``: the step of the loaded checkpoint.
    """

    def __init__(self, model: TMR, preprocess: Preprocess, text_encoder: TextEncoder, *, run: Path, step: int,
                 text_encoder_spec: str, device: torch.device):
        if text_encoder.dim != model.config.text_dim:
            raise ValueError(f"{run}: the evaluator expects {model.config.text_dim}-d text features, "
                             f"{text_encoder.name} gives {text_encoder.dim}-d")
        self.model = model.to(device).eval().requires_grad_(False)
        self.config: EvaluatorConfig = model.config
        self.preprocess = preprocess
        self.text_encoder = text_encoder
        self.run = run
        self.step = step
        self.text_encoder_spec = text_encoder_spec
        self.device = device

    @classmethod
    def load(cls, run: str | os.PathLike, *, device: torch.device | str = "cpu",
             checkpoint: str | os.PathLike | None = None, text_encoder: TextEncoder | None = None) -> Evaluator:
        """The evaluator of ``run`` from its newest checkpoint, or ``checkpoint`` (a checkpoint directory, or its
        name under ``run/checkpoints``, e.g. ``step-00005000``). ``text_encoder`` replaces the recorded one (it must
        give features of the same name and width)."""
        opened = open_run(run, kind="evaluator")
        run, saved = opened.path, opened.config
        if "preprocess" not in saved.extra:
            raise HandxInputError(run / CONFIG, "evaluator config has no 'preprocess' entry")
        path = opened.checkpoint(checkpoint)
        try:
            config = EvaluatorConfig.from_json(saved.model)
            preprocess = Preprocess.from_json(saved.extra["preprocess"])
        except (TypeError, ValueError) as exc:
            raise HandxInputError(run / CONFIG, f"invalid evaluator config ({exc})") from exc
        spec = saved.text_encoder
        encoder = text_encoder or load_text_encoder(spec)
        expected = saved.extra.get("text_encoder_name")
        if expected is not None and encoder.name != expected:
            raise HandxInputError(run / CONFIG, f"trained with text features {expected!r}, given {encoder.name!r}")
        ckpt = load_checkpoint(path, optimizer=False)
        model = TMR(config)
        try:
            model.load_state_dict(ckpt.model)
        except RuntimeError as exc:
            raise HandxInputError(path, f"weights do not match the evaluator config ({exc})") from exc
        return cls(model, preprocess, encoder, run=run, step=ckpt.step, text_encoder_spec=spec,
                   device=torch.device(device))

    @torch.no_grad()
    def embed_motion(self, motions: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """μ of the motion encoder: ``(N, T, 2, 21, 3)`` metres (T = ``config.frames``) → float64 ``(N, latent)``."""
        motions = np.asarray(motions)
        if motions.ndim != 5 or motions.shape[1] != self.config.frames:
            raise ValueError(f"embed_motion: expected motions (N, {self.config.frames}, 2, 21, 3) in metres (the "
                             f"evaluator's {self.config.frames}-frame window), got {tuple(motions.shape)}")
        out = np.zeros((motions.shape[0], self.config.latent), dtype=np.float64)
        for lo in range(0, motions.shape[0], batch_size):
            x = torch.from_numpy(self.preprocess(motions[lo:lo + batch_size])).to(self.device)  # (b, T, 126)
            out[lo:lo + batch_size] = self.model.encode_motion(x)[0].double().cpu().numpy()
        return out

    @torch.no_grad()
    def embed_text(self, left: Sequence[str], right: Sequence[str], relation: Sequence[str],
                   batch_size: int = 256) -> np.ndarray:
        """μ of the text encoder for N clips' (left, right, two-hands relation) texts → float64 ``(N, latent)``."""
        branches = [check_texts(texts) for texts in (left, right, relation)]
        if len({len(texts) for texts in branches}) != 1:
            raise ValueError(f"embed_text: left, right and relation must hold one text per clip each, got "
                             f"{[len(texts) for texts in branches]} texts")
        n = len(branches[0])
        out = np.zeros((n, self.config.latent), dtype=np.float64)
        for lo in range(0, n, batch_size):
            batch = tuple(texts[lo:lo + batch_size] for texts in branches)
            tokens, mask = encode_branches(self.text_encoder, batch, self.device)  # (3, b, L, D), (3, b, L)
            out[lo:lo + batch_size] = self.model.encode_text(tokens, mask)[0].double().cpu().numpy()
        return out

    def describe(self) -> dict[str, Any]:
        """What a report should say about the evaluator."""
        return {"run": str(self.run), "step": self.step, "centring": self.preprocess.centring,
                "text_encoder": self.text_encoder.name, "latent": self.config.latent}
