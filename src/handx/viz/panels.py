"""What a render shows: one :class:`Panel` per clip (motion, title, captions, highlighted joints, events).

``load_panels`` gathers panels from any source :func:`handx.io.sources.load_clips` reads (stores, ``handx
generate`` outputs, HandX release files, npy/npz clips), in order, refusing more than :data:`MAX_PANELS`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from handx.errors import HandxInputError
from handx.io.sources import Clip, load_clips
from handx.motion import validate_clip
from handx.skeleton import NUM_HANDS, NUM_JOINTS

#: Most clips one render shows (a grid of 4 × 4).
MAX_PANELS = 16
#: A joint a condition keeps with a weight over this is marked (a soft condition's ramp starts near 0).
HIGHLIGHT_OVER = 0.5


@dataclasses.dataclass(frozen=True)
class Panel:
    """One clip to draw.

    Attributes:
        motion: ``(T, 2, 21, 3)`` metres, canonical frame.
        title: shown above the view (e.g. the clip id).
        texts: the captions ``(left, right, two_hands_relation)``, or None for none.
        highlight: ``(T, 2, 21)`` bool, joints drawn in the highlight colour (e.g. constrained joints of a
            conditioned generation), or None.
        codes: the clip's motion codes (:func:`handx.features.codes.motion_codes`) for the timeline; computed
            when a timeline is asked for and this is None.
    """

    motion: np.ndarray
    title: str = ""
    texts: tuple[str, str, str] | None = None
    highlight: np.ndarray | None = None
    codes: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        motion = validate_clip(self.motion, item=self.title or "panel")
        object.__setattr__(self, "motion", motion)
        if self.texts is not None and len(self.texts) != 3:
            raise HandxInputError(None, f"texts must be (left, right, two_hands_relation), got {len(self.texts)} "
                                        "strings", self.title or "panel")
        if self.highlight is not None:
            mask = np.asarray(self.highlight, dtype=bool)
            if mask.shape != (motion.shape[0], NUM_HANDS, NUM_JOINTS):
                raise HandxInputError(None, f"highlight must have shape ({motion.shape[0]}, 2, 21), got "
                                            f"{mask.shape}", self.title or "panel")
            object.__setattr__(self, "highlight", mask)

    @property
    def frames(self) -> int:
        return int(self.motion.shape[0])

    @classmethod
    def from_clip(cls, clip: Clip, *, variant: int = 0, highlight: np.ndarray | None = None) -> "Panel":
        """A panel for ``clip`` with its ``variant``-th description (the last one when it has fewer; none when
        it has no texts)."""
        t = clip.texts
        texts = None
        if len(t.left):
            k = min(max(variant, 0), len(t.left) - 1)
            texts = (t.left[k], t.right[k], t.two_hands_relation[k])
        return cls(clip.motion, clip.id, texts, highlight)


def check_panel_count(n: int) -> None:
    if n == 0:
        raise HandxInputError(None, "nothing to render: no clips")
    if n > MAX_PANELS:
        raise HandxInputError(None, f"{n} clips to render; one render shows at most {MAX_PANELS} "
                                    "(choose clips with --clips)")


def load_panels(sources: Sequence[tuple[str | os.PathLike, Sequence[str] | None]], *, variant: int = 0
                ) -> list[Panel]:
    """Panels for ``(path, ids)`` pairs, in order: the clips named by ``ids`` (None: every clip) of each path.

    Reads at most :data:`MAX_PANELS` + 1 clips, so a whole store is refused quickly.
    """
    clips: list[Clip] = []
    for path, ids in sources:
        found = load_clips(path, ids, limit=MAX_PANELS + 1 - len(clips))
        if not found:
            raise HandxInputError(path, "no clips there")
        clips += found
        if len(clips) > MAX_PANELS:
            raise HandxInputError(path, f"more than {MAX_PANELS} clips to render; one render shows at most "
                                        f"{MAX_PANELS} (choose clips with --clips)")
    check_panel_count(len(clips))
    return [Panel.from_clip(c, variant=variant) for c in clips]


def generation_panels(joints: np.ndarray, texts: Sequence[tuple[str, str, str]], *,
                      highlight: np.ndarray | None = None, condition: np.ndarray | None = None) -> list[Panel]:
    """Panels for generated samples ``(K, T, 2, 21, 3)``: ``sample k`` each, captioned with the description
    triplet (segments of a long take joined with "Then:"); ``highlight`` ``(T', 2, 21)``, how strongly a
    condition keeps each joint (``pipeline.constrained_joints``, in [0, 1]; bool works too), marks the joints
    kept more than :data:`HIGHLIGHT_OVER`; the ``condition`` clip, if any, comes last with the same marks."""
    joints = np.asarray(joints)
    t = joints.shape[1]
    caption = tuple(" Then: ".join(seg[b] for seg in texts) for b in range(3))
    marks = None if highlight is None else np.asarray(highlight, dtype=np.float32) > HIGHLIGHT_OVER  # (T', 2, 21)
    mask = None if marks is None else marks[:t]
    panels = [Panel(motion, f"sample {k}", caption, mask) for k, motion in enumerate(joints)]
    if condition is not None:
        panels.append(Panel(condition, "condition", None, marks))
    return panels
