"""Generating for a benchmark: G generations for every item of an evaluation set with any generator family
(a :class:`handx.pipelines.TextToMotion`).

Group g is sampled with seed ``seed + g`` for the whole set (batched over items), so a group is reproducible on
its own. Each finished group is written at once (atomically) under ``<out>.parts/``, so an interrupted job
resumes at the first missing group; the parts are joined into ``out`` (the handx generations layout of
:mod:`handx.eval.submission`) at the end. Parts record the settings they were made with and are not reused when
the settings change.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from handx.eval.submission import EvalSet, save_generated
from handx.io.atomic import write_json, write_npy
from handx.motion import Triplet
from handx.pipelines import TextToMotion


def generate_for_eval(pipeline: TextToMotion, eval_set: EvalSet, out: str | os.PathLike, *, groups: int = 4,
                      seed: int = 0, settings: Any = None, batch_size: int = 64, progress: bool = True,
                      describe: dict[str, Any] | None = None) -> np.ndarray:
    """Generations ``(N, groups, T, 2, 21, 3)`` for ``eval_set``, also saved to ``out`` (``.npz``);
    ``settings`` are the family's sampler settings (``pipeline.Settings``; default: its defaults)."""
    if groups < 1:
        raise ValueError(f"groups must be >= 1, got {groups}")
    settings = settings if settings is not None else pipeline.Settings()
    out = Path(out)
    parts = out.with_name(out.name + ".parts")
    settings_record = {"family": pipeline.family, **settings.describe(), "seed": seed, "batch_size": batch_size,
                       "ids": list(eval_set.ids), "texts": [list(t) for t in eval_set.texts], **(describe or {})}
    stamp = parts / "settings.json"
    if stamp.is_file() and json.loads(stamp.read_text(encoding="utf-8")) != settings_record:
        shutil.rmtree(parts)  # made with other settings: start over
    parts.mkdir(parents=True, exist_ok=True)
    write_json(stamp, settings_record)
    triplets = [Triplet(*t) for t in zip(*eval_set.texts)]
    done = []
    for g in tqdm(range(groups), desc="generate groups", unit="group", disable=not progress):
        path = parts / f"group-{g:03d}.npy"
        if not path.is_file():
            joints = pipeline.generate(triplets, seed=seed + g, settings=settings, batch_size=batch_size,
                                       progress=progress)
            write_npy(path, joints)
        done.append(np.load(path))
    joints = np.stack(done, axis=1)  # (N, G, T, 2, 21, 3)
    save_generated(out, eval_set.ids, joints, {k: v for k, v in settings_record.items() if k not in ("ids", "texts")}
                   | {"groups": groups})
    return joints
