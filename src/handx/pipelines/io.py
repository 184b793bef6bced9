"""What a pipeline generated, on disk, the same for every family: an ``.npz`` (no pickles) with

* ``joints`` float32 ``(K, T, 2, 21, 3)`` metres;
* ``left``, ``right``, ``two_hands_relation``: the texts, one per segment of the take;
* ``settings``: JSON of :func:`generation_record` (family, the family's sampler settings, seed, num, length,
  mode, run).

:func:`handx.io.sources.iter_clips` reads it back (``handx render``, ``handx view``, ``handx export``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from handx.io.atomic import atomic_open
from handx.motion import Triplet
from handx.sampling.condition import Condition


def triplets(left: Sequence[str], right: Sequence[str], relation: Sequence[str]) -> tuple[Triplet, ...]:
    """One triplet per segment from the three lists of texts, which must be equally long."""
    if not (len(left) == len(right) == len(relation)):
        raise ValueError("give as many --left as --right and --relation texts (one triplet per segment)")
    return tuple(Triplet(a, b, c) for a, b, c in zip(left, right, relation))


def generation_record(family: str, settings: Any, joints: np.ndarray, *, seed: int,
                      constraints: Condition | None = None, run: str | None = None) -> dict[str, Any]:
    """How ``joints`` ``(K, T, 2, 21, 3)`` were made: ``{family, **settings.describe(), seed, num, length, mode}``
    and ``run`` when given (``mode`` is ``"text"`` without a condition)."""
    record = {"family": family, **settings.describe(), "seed": int(seed), "num": int(joints.shape[0]),
              "length": int(joints.shape[1]), "mode": constraints.mode if constraints is not None else "text"}
    if run is not None:
        record["run"] = str(run)
    return record


def save_generation(path: str | os.PathLike, joints: np.ndarray, segments: Sequence[Triplet],
                    record: dict[str, Any]) -> None:
    """Write ``joints`` ``(K, T, 2, 21, 3)``, the texts of ``segments`` and ``record`` (JSON) to an ``.npz``
    atomically (an interrupted write leaves no half file)."""
    with atomic_open(path, "wb") as handle:
        np.savez(handle, joints=np.asarray(joints, dtype=np.float32),
                 left=np.array([t.left for t in segments]), right=np.array([t.right for t in segments]),
                 two_hands_relation=np.array([t.relation for t in segments]),
                 settings=np.array(json.dumps(record)))
