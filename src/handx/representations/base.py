"""The contract of a per-frame motion representation and the layout of its feature columns.

A :class:`Representation` turns clips ``(..., T, 2, 21, 3)`` (metres, :mod:`handx.skeleton` order) into
features ``(..., T, F)`` plus the few per-clip numbers the features leave out (``extras``: a translation), and
back, exactly. Its :class:`Layout` says what every one of the F columns holds, so that masks, losses and
conditioning select columns by meaning (``layout.columns(hand=LEFT, channels=("pos",))``) instead of by
hard-coded offsets.

Every column is one ``(hand, joint, channel, component)``:

* ``hand``: :data:`handx.skeleton.LEFT`, :data:`handx.skeleton.RIGHT`, or :data:`BOTH` for a quantity of the
  two hands together (the left wrist relative to the right one);
* ``joint``: the joint it describes (a root quantity such as a hand's rotation belongs to its wrist);
* ``channel``: the quantity, e.g. ``"pos"``, ``"bend"``, ``"local_vel"``;
* ``component``: ``"x"``, ``"y"``, ``"z"``, an entry of a matrix such as ``"r01"``, or ``""`` for a scalar.

Column names read ``hand/joint/channel[/component]``, e.g. ``left/index_pip/pos/x`` or ``both/wrist/wrist_offset/z``.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import numpy as np
import torch

from handx.skeleton import HAND_NAMES, JOINT_NAMES, NUM_HANDS, NUM_JOINTS

#: ``hand`` of a column that depends on both hands.
BOTH = -1
XYZ: tuple[str, str, str] = ("x", "y", "z")

ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, torch.Tensor)


def _hand_name(hand: int) -> str:
    return "both" if hand == BOTH else HAND_NAMES[hand]


@dataclasses.dataclass(frozen=True, eq=False)
class Layout:
    """What each of the F feature columns of a representation holds (one entry per column).

    Attributes:
        hand: int64 ``(F,)``: :data:`handx.skeleton.LEFT`, :data:`handx.skeleton.RIGHT` or :data:`BOTH`.
        joint: int64 ``(F,)``: joint index in :mod:`handx.skeleton` order.
        channel: ``F`` quantity names.
        component: ``F`` component names (``""`` for a scalar channel).
    """

    hand: np.ndarray
    joint: np.ndarray
    channel: tuple[str, ...]
    component: tuple[str, ...]

    def __post_init__(self) -> None:
        hand = np.array(self.hand, dtype=np.int64).reshape(-1)
        joint = np.array(self.joint, dtype=np.int64).reshape(-1)
        channel, component = tuple(self.channel), tuple(self.component)
        n = hand.shape[0]
        if not (joint.shape[0] == len(channel) == len(component) == n):
            raise ValueError(f"Layout: hand, joint, channel and component need one entry per column, got lengths "
                             f"{n}, {joint.shape[0]}, {len(channel)}, {len(component)}")
        if not np.isin(hand, (BOTH, *range(NUM_HANDS))).all():
            raise ValueError(f"Layout.hand must hold 0 (left), 1 (right) or {BOTH} (both), "
                             f"got {sorted(set(hand.tolist()))}")
        if not ((joint >= 0) & (joint < NUM_JOINTS)).all():
            raise ValueError(f"Layout.joint must lie in [0, {NUM_JOINTS - 1}], got {sorted(set(joint.tolist()))}")
        if not all(channel):
            raise ValueError("Layout.channel: every column needs a channel name")
        repeated = [key for key, count in Counter(zip(hand.tolist(), joint.tolist(), channel, component)).items()
                    if count > 1]
        if repeated:
            raise ValueError(f"Layout: (hand, joint, channel, component) {repeated[0]} names more than one column")
        hand.setflags(write=False)
        joint.setflags(write=False)
        object.__setattr__(self, "hand", hand)
        object.__setattr__(self, "joint", joint)
        object.__setattr__(self, "channel", channel)
        object.__setattr__(self, "component", component)

    @classmethod
    def grid(cls, hands: Iterable[int], joints: Iterable[int], channels: Sequence[tuple[str, Sequence[str]]]) -> Layout:
        """Columns for every hand × joint × (channel, component), in that nesting order (hand slowest).

        ``channels`` lists ``(channel, components)``; ``components`` ``("",)`` makes a scalar channel.
        """
        per_joint = [(name, comp) for name, comps in channels for comp in comps]
        rows = list(itertools.product(list(hands), list(joints), per_joint))
        return cls(hand=np.array([h for h, _, _ in rows], dtype=np.int64),
                   joint=np.array([j for _, j, _ in rows], dtype=np.int64),
                   channel=tuple(c for _, _, (c, _) in rows), component=tuple(k for _, _, (_, k) in rows))

    @classmethod
    def concat(cls, *parts: Layout) -> Layout:
        """The columns of ``parts`` one after the other."""
        return cls(hand=np.concatenate([p.hand for p in parts]), joint=np.concatenate([p.joint for p in parts]),
                   channel=sum((p.channel for p in parts), ()), component=sum((p.component for p in parts), ()))

    @property
    def features(self) -> int:
        """F, the number of columns."""
        return int(self.hand.shape[0])

    @property
    def names(self) -> tuple[str, ...]:
        """``hand/joint/channel[/component]`` for every column."""
        return tuple("/".join([_hand_name(h), JOINT_NAMES[j], c] + ([k] if k else []))
                     for h, j, c, k in zip(self.hand.tolist(), self.joint.tolist(), self.channel, self.component))

    def select(self, hand: int | Iterable[int] | None = None, joints: Iterable[int] | None = None,
               channels: Iterable[str] | None = None, components: Iterable[str] | None = None) -> np.ndarray:
        """Bool ``(F,)``: the columns matching every given criterion (None = any value).

        ``hand`` is one hand or several (:data:`BOTH` selects the two-hand columns); ``joints``, ``channels`` and
        ``components`` are collections. A channel or component name this layout does not have is an error.
        """
        keep = np.ones(self.features, dtype=bool)
        if hand is not None:
            hands = [hand] if isinstance(hand, (int, np.integer)) else list(hand)
            bad = [h for h in hands if h not in (BOTH, *range(NUM_HANDS))]
            if bad:
                raise ValueError(f"Layout.select: hand must be 0 (left), 1 (right) or {BOTH} (both), got {bad}")
            keep &= np.isin(self.hand, hands)
        if joints is not None:
            joint_list = [int(j) for j in joints]
            bad = [j for j in joint_list if not 0 <= j < NUM_JOINTS]
            if bad:
                raise ValueError(f"Layout.select: joints must lie in [0, {NUM_JOINTS - 1}], got {bad}")
            keep &= np.isin(self.joint, joint_list)
        for field, wanted in (("channel", channels), ("component", components)):
            if wanted is None:
                continue
            wanted = [wanted] if isinstance(wanted, str) else list(wanted)
            values = getattr(self, field)
            unknown = sorted(set(wanted) - set(values))
            if unknown:
                raise ValueError(f"Layout.select: unknown {field}(s) {unknown}; this layout has "
                                 f"{sorted(set(values), key=values.index)}")
            keep &= np.isin(np.array(values, dtype=object), wanted)
        return keep

    def columns(self, hand: int | Iterable[int] | None = None, joints: Iterable[int] | None = None,
                channels: Iterable[str] | None = None, components: Iterable[str] | None = None) -> np.ndarray:
        """Sorted int64 indices of the columns :meth:`select` keeps."""
        return np.flatnonzero(self.select(hand, joints, channels, components))


@dataclasses.dataclass(frozen=True)
class Representation:
    """Per-frame motion features with an exact inverse: a name, a width, a :class:`Layout` and two functions.

    ``encode(joints (..., T, 2, 21, 3)) → (features (..., T, F), extras)``, where ``extras`` ``(..., 3)`` is the
    per-clip translation the features do not carry, and ``decode(features, extras=None)`` gives the joints back
    (numpy or torch). Without ``extras``, ``decode`` returns the canonical placement: the right wrist at the
    origin at frame 0 (reference §1.2).
    """

    name: str
    features: int
    layout: Layout
    encode: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    decode: Callable[..., ArrayOrTensor]

    def __post_init__(self) -> None:
        if self.layout.features != self.features:
            raise ValueError(f"Representation {self.name}: its layout has {self.layout.features} columns, "
                             f"not {self.features}")


def check_clips(joints: np.ndarray, name: str) -> None:
    """Raise unless ``joints`` has shape ``(..., T, 2, 21, 3)``; ``name`` is the calling function."""
    if joints.ndim < 4 or tuple(joints.shape[-3:]) != (NUM_HANDS, NUM_JOINTS, 3):
        raise ValueError(f"{name} expects joints of shape (..., T, 2, 21, 3), got {tuple(joints.shape)}")


def check_features(features: np.ndarray | torch.Tensor, width: int, name: str) -> None:
    """Raise unless ``features`` has shape ``(..., T, width)``; ``name`` is the calling function."""
    if features.ndim < 2 or features.shape[-1] != width:
        raise ValueError(f"{name} expects features of shape (..., T, {width}), got {tuple(features.shape)}")


def check_extras(extras: np.ndarray | torch.Tensor, features: np.ndarray | torch.Tensor, name: str,
                 label: str = "extras") -> None:
    """Raise unless ``extras`` is ``(..., 3)`` with the leading shape of ``features`` ``(..., T, F)``."""
    expected = tuple(features.shape[:-2]) + (3,)
    if tuple(extras.shape) != expected:
        raise ValueError(f"{name} expects {label} of shape {expected}, got {tuple(extras.shape)}")
