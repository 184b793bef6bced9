"""The benchmark protocol: every metric for the ground truth and each generator, over replications.

One evaluation embeds the texts, the ground-truth motions and every generation once with the evaluator, then
runs ``replications`` (default 20) rounds. Round r uses a generator seeded with ``(seed, r)`` for everything
random in it (the order that forms the R-precision pools, the diversity and multimodality pairs) and
generation group ``r mod G`` of each generator, so the spread between rounds covers both the pool draw and the
sampling noise. Each metric is reported as mean ± 1.96·s/√n over the n rounds (s the sample standard deviation,
ddof 1), the usual 95 % interval of the mean.

The ground-truth row ("Real") is computed by exactly the same code with the ground truth standing in for the
generations: its FID and MPJPE are 0 and its contact scores 1 by construction, and its R-precision, matching
score and diversity are the ceiling a generator can reach under this evaluator. Nothing here depends on the
wall clock or on the order of dictionaries, so a fixed seed reproduces the table to the last digit.

Metric definitions: :mod:`handx.eval.metrics` and :mod:`handx.eval.plausibility` (docs/metrics.md).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from handx.eval import metrics, plausibility
from handx.eval.submission import EvalSet

REAL = "Real"
#: Metrics in report order, with their display name, unit and whether larger is better (None: closer to Real).
METRICS: dict[str, tuple[str, str, bool | None]] = {
    "r_precision_top1": ("R@1", "", True),
    "r_precision_top2": ("R@2", "", True),
    "r_precision_top3": ("R@3", "", True),
    "fid": ("FID", "", False),
    "matching_score": ("MM-Dist", "", False),
    "diversity": ("Diversity", "", None),
    "multimodality": ("MModality", "", None),
    "mpjpe_mm": ("MPJPE", "mm", False),
    "contact_precision": ("C-Prec", "", True),
    "contact_recall": ("C-Rec", "", True),
    "contact_f1": ("C-F1", "", True),
    "intra_precision": ("Intra-P", "", True),
    "intra_recall": ("Intra-R", "", True),
    "intra_f1": ("Intra-F1", "", True),
    "inter_precision": ("Inter-P", "", True),
    "inter_recall": ("Inter-R", "", True),
    "inter_f1": ("Inter-F1", "", True),
    "penetration_mm": ("Penetration", "mm", False),
    "penetration_max_mm": ("Pen. max", "mm", False),
    "penetration_frames": ("Pen. frames", "", False),
    "jerk": ("Jerk", "m/s³", None),
    "bone_drift_pct": ("Bone drift", "%", False),
    "sliding_mm_s": ("Sliding", "mm/s", False),
}
PLAUSIBILITY_KEYS = {"penetration_mm": "penetration_mm", "penetration_max_mm": "penetration_max_mm",
                     "penetration_frames": "penetration_frames", "jerk": "jerk",
                     "bone_drift_pct": "bone_drift_pct", "sliding_mm_s": "sliding_mm_s"}


class MotionTextEmbedder(Protocol):
    """What the protocol needs of an evaluator (:class:`handx.evaluator.Evaluator`)."""

    def embed_motion(self, motions: np.ndarray) -> np.ndarray: ...

    def embed_text(self, left: list[str], right: list[str], relation: list[str]) -> np.ndarray: ...

    def describe(self) -> dict[str, Any]: ...


@dataclasses.dataclass(frozen=True)
class EvalSettings:
    """Settings of an evaluation."""

    replications: int = 20
    seed: int = 0
    pool: int = 32
    diversity_pairs: int = 300
    multimodality_pairs: int = 20

    def __post_init__(self) -> None:
        for name in ("replications", "pool", "diversity_pairs", "multimodality_pairs"):
            if getattr(self, name) < 1:
                raise ValueError(f"EvalSettings.{name} must be >= 1, got {getattr(self, name)}")




@dataclasses.dataclass(frozen=True)
class Estimate:
    """A metric over the replications: mean, the half-width of its 95 % interval, and every round's value."""

    mean: float
    ci95: float
    values: tuple[float, ...]

    @classmethod
    def of(cls, values: list[float]) -> "Estimate":
        v = np.asarray(values, dtype=np.float64)
        finite = v[np.isfinite(v)]
        if finite.size == 0:
            return cls(math.nan, math.nan, tuple(float(x) for x in v))
        ci = 1.96 * finite.std(ddof=1) / math.sqrt(finite.size) if finite.size > 1 else 0.0
        return cls(float(finite.mean()), float(ci), tuple(float(x) for x in v))

    def to_json(self) -> dict[str, Any]:
        def clean(x: float) -> float | None:
            return None if math.isnan(x) else x

        return {"mean": clean(self.mean), "ci95": clean(self.ci95), "values": [clean(x) for x in self.values]}


@dataclasses.dataclass(frozen=True)
class EvalReport:
    """Rows (``Real`` first, then each generator) of metric estimates, with what produced them."""

    rows: dict[str, dict[str, Estimate]]
    settings: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"format": "handx-eval", "version": 1, "settings": self.settings,
                "rows": {name: {k: e.to_json() for k, e in row.items()} for name, row in self.rows.items()}}


@dataclasses.dataclass(frozen=True)
class _Scored:
    """What a row needs per generation group, computed once: embeddings, clip contact labels, plausibility."""

    embeddings: np.ndarray  # (N, G, D)
    contacts: list[metrics.ClipContacts]  # per group
    mpjpe: list[float]  # per group
    plausible: list[dict[str, float]]  # per group


def _score(embedder: MotionTextEmbedder, truth: np.ndarray, generated: np.ndarray, bar: tqdm,
           truth_frames: np.ndarray | None = None) -> _Scored:
    """Embeddings, clip contact labels, MPJPE and plausibility of every group of ``generated``. The per-frame
    contact labels of a group are computed once and serve both the contact scores and contact sliding
    (``truth_frames``: the ground truth's, when ``generated`` is the ground truth)."""
    embeddings, contacts, errors, plausible = [], [], [], []
    for g in range(generated.shape[1]):
        motion = generated[:, g]  # (N, T, 2, 21, 3)
        frames = metrics.frame_contact_labels(motion) if truth_frames is None else truth_frames  # (N, T, 19)
        embeddings.append(np.asarray(embedder.embed_motion(motion), dtype=np.float64))
        contacts.append(metrics.clip_contact_labels(motion, frame_labels=frames))
        errors.append(metrics.mpjpe(truth, motion))
        plausible.append(plausibility.plausibility(motion, frame_labels=frames).as_dict())
        bar.update(1)
    return _Scored(np.stack(embeddings, axis=1), contacts, errors, plausible)


def _round(text: np.ndarray, truth_emb: np.ndarray, truth_contacts: metrics.ClipContacts, scored: _Scored,
           group: int, rng: np.random.Generator, settings: EvalSettings) -> dict[str, float]:
    """Every metric of one row in one replication."""
    motion_emb = scored.embeddings[:, group]  # (N, D)
    order = rng.permutation(len(text))
    top = metrics.r_precision(text, motion_emb, pool=settings.pool, top_k=3, order=order)
    out = {f"r_precision_top{k + 1}": float(top[k]) for k in range(3)}
    out["fid"] = metrics.fid(truth_emb, motion_emb)
    out["matching_score"] = metrics.matching_score(text, motion_emb)
    out["diversity"] = metrics.diversity(motion_emb, pairs=settings.diversity_pairs, rng=rng)
    out["multimodality"] = (metrics.multimodality(scored.embeddings, pairs=settings.multimodality_pairs, rng=rng)
                            if scored.embeddings.shape[1] > 1 else math.nan)
    out["mpjpe_mm"] = scored.mpjpe[group]
    predicted = scored.contacts[group]
    for name, truth_labels, labels in (("contact", truth_contacts.all(), predicted.all()),
                                       ("intra", truth_contacts.intra, predicted.intra),
                                       ("inter", truth_contacts.inter, predicted.inter)):
        prf = metrics.contact_prf(truth_labels, labels)
        out[f"{name}_precision"], out[f"{name}_recall"], out[f"{name}_f1"] = prf.precision, prf.recall, prf.f1
    for key, source in PLAUSIBILITY_KEYS.items():
        out[key] = scored.plausible[group][source]
    return out


def evaluate(embedder: MotionTextEmbedder, eval_set: EvalSet, generated: Mapping[str, np.ndarray], *,
             settings: EvalSettings = EvalSettings(), progress: bool = True,
             notes: Mapping[str, Any] | None = None) -> EvalReport:
    """Score the ground truth and each generator of ``generated`` (name → ``(N, G, T, 2, 21, 3)``).

    Returns an :class:`EvalReport` whose ``Real`` row comes first, then the generators in the given order.
    """
    n = len(eval_set)
    for name, joints in generated.items():
        if name == REAL:
            raise ValueError(f"generator name {REAL!r} is reserved for the ground truth")
        if joints.ndim != 6 or joints.shape[0] != n or joints.shape[2:] != eval_set.motion.shape[1:]:
            raise ValueError(f"generations of {name!r} have shape {joints.shape}; expected (N={n}, G, "
                             f"{', '.join(map(str, eval_set.motion.shape[1:]))})")
    truth = eval_set.motion
    total = 1 + sum(j.shape[1] for j in generated.values())
    with tqdm(total=total, desc="embed and score", unit="group", disable=not progress) as bar:
        text = np.asarray(embedder.embed_text(*eval_set.texts), dtype=np.float64)  # (N, D)
        rows_in = {REAL: _score(embedder, truth, truth[:, None], bar, metrics.frame_contact_labels(truth))}
        for name, joints in generated.items():
            rows_in[name] = _score(embedder, truth, joints, bar)
    truth_emb = rows_in[REAL].embeddings[:, 0]
    truth_contacts = rows_in[REAL].contacts[0]

    rows: dict[str, dict[str, Estimate]] = {}
    for name, scored in rows_in.items():
        rounds = []
        for r in range(settings.replications):
            rng = np.random.default_rng([settings.seed, r])
            group = r % scored.embeddings.shape[1]
            rounds.append(_round(text, truth_emb, truth_contacts, scored, group, rng, settings))
        rows[name] = {key: Estimate.of([row[key] for row in rounds]) for key in METRICS}
    meta = {"protocol": dataclasses.asdict(settings), "data": eval_set.source, "items": n,
            "groups": {name: int(j.shape[1]) for name, j in generated.items()},
            "evaluator": embedder.describe(), **(dict(notes) if notes else {})}
    return EvalReport(rows, meta)
