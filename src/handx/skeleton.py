"""The 21-joint two-hand skeleton of HandX: names, order, chains, bones and mirroring.

This module is the one place where joint indices live (reference §1.1). Every other module refers to joints
by the names and tables defined here.

Joint order (HandX / MANO order plus five fingertips)::

    0 wrist
    1-3 index mcp, pip, dip      4-6 middle mcp, pip, dip
    7-9 pinky mcp, pip, dip      10-12 ring mcp, pip, dip
    13-15 thumb cmc, mcp, ip     16-20 tips: thumb, index, middle, ring, pinky

Axis 1 of a clip ``(T, 2, 21, 3)`` is the hand: 0 = left, 1 = right.
"""

from __future__ import annotations

import numpy as np

NUM_JOINTS = 21
NUM_HANDS = 2
LEFT = 0
RIGHT = 1
HAND_NAMES: tuple[str, str] = ("left", "right")

JOINT_NAMES: tuple[str, ...] = (
    "wrist",
    "index_mcp", "index_pip", "index_dip",
    "middle_mcp", "middle_pip", "middle_dip",
    "pinky_mcp", "pinky_pip", "pinky_dip",
    "ring_mcp", "ring_pip", "ring_dip",
    "thumb_cmc", "thumb_mcp", "thumb_ip",
    "thumb_tip", "index_tip", "middle_tip", "ring_tip", "pinky_tip",
)
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINT_NAMES)}

WRIST = JOINT_INDEX["wrist"]
FINGERS: tuple[str, ...] = ("thumb", "index", "middle", "ring", "pinky")

#: Chains from the wrist to each fingertip, listed thumb, index, middle, ring, pinky (reference §1.1).
CHAINS: dict[str, tuple[int, int, int, int, int]] = {
    "thumb": (0, 13, 14, 15, 16),
    "index": (0, 1, 2, 3, 17),
    "middle": (0, 4, 5, 6, 18),
    "ring": (0, 10, 11, 12, 19),
    "pinky": (0, 7, 8, 9, 20),
}
#: Chains as an array (5 fingers, 5 joints), rows in ``FINGERS`` order.
CHAIN_ARRAY = np.array([CHAINS[f] for f in FINGERS], dtype=np.int64)

TIPS: dict[str, int] = {f: CHAINS[f][-1] for f in FINGERS}
TIP_INDICES = np.array([TIPS[f] for f in FINGERS], dtype=np.int64)
#: The knuckle at the base of each finger (thumb: its CMC joint).
BASES: dict[str, int] = {f: CHAINS[f][1] for f in FINGERS}

#: Parent of each joint along the chains; the wrist is the root (-1).
PARENTS = np.full(NUM_JOINTS, -1, dtype=np.int64)
for _chain in CHAINS.values():
    for _parent, _child in zip(_chain[:-1], _chain[1:]):
        PARENTS[_child] = _parent

#: Bones as (parent, child) pairs, 20 of them, in child-index order.
BONES = np.array([(PARENTS[j], j) for j in range(1, NUM_JOINTS)], dtype=np.int64)
BONE_NAMES: tuple[str, ...] = tuple(f"{JOINT_NAMES[p]}->{JOINT_NAMES[c]}" for p, c in BONES)

#: The bone from each finger's last joint to its tip (the "tip segment").
TIP_BONES = np.array([(CHAINS[f][-2], CHAINS[f][-1]) for f in FINGERS], dtype=np.int64)

#: Joints that span the palm, used for palm geometry (wrist and the five finger bases).
PALM_TRIANGLES = np.array(
    [
        (JOINT_INDEX["wrist"], JOINT_INDEX["thumb_cmc"], JOINT_INDEX["index_mcp"]),
        (JOINT_INDEX["wrist"], JOINT_INDEX["index_mcp"], JOINT_INDEX["middle_mcp"]),
        (JOINT_INDEX["wrist"], JOINT_INDEX["middle_mcp"], JOINT_INDEX["ring_mcp"]),
        (JOINT_INDEX["wrist"], JOINT_INDEX["ring_mcp"], JOINT_INDEX["pinky_mcp"]),
    ],
    dtype=np.int64,
)

#: Nominal adult bone lengths in metres, keyed by each bone's child joint (published metacarpal and phalanx
#: lengths with soft tissue at the tips; wrist → middle tip 0.183 m). Used where a source gives no reliable
#: lengths (image-space landmarks) and by the synthetic hand.
NOMINAL_BONE_LENGTH_BY_CHILD: dict[str, float] = {
    "index_mcp": 0.0866, "index_pip": 0.040, "index_dip": 0.024, "index_tip": 0.021,
    "middle_mcp": 0.0881, "middle_pip": 0.045, "middle_dip": 0.028, "middle_tip": 0.022,
    "ring_mcp": 0.0810, "ring_pip": 0.042, "ring_dip": 0.026, "ring_tip": 0.022,
    "pinky_mcp": 0.0778, "pinky_pip": 0.033, "pinky_dip": 0.019, "pinky_tip": 0.020,
    "thumb_cmc": 0.0342, "thumb_mcp": 0.043, "thumb_ip": 0.032, "thumb_tip": 0.024,
}

#: MediaPipe / OpenPose hand order → ours: ``ours = theirs[..., OPENPOSE_TO_HANDX, :]`` (reference §1.1).
OPENPOSE_TO_HANDX = np.array(
    [0, 5, 6, 7, 9, 10, 11, 17, 18, 19, 13, 14, 15, 1, 2, 3, 4, 8, 12, 16, 20], dtype=np.int64
)

#: :data:`NOMINAL_BONE_LENGTH_BY_CHILD` in :data:`BONES` order: ``(20,)``.
NOMINAL_BONE_LENGTHS = np.array([NOMINAL_BONE_LENGTH_BY_CHILD[JOINT_NAMES[c]] for _, c in BONES])


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """Length of each of the 20 bones: ``(..., 21, 3)`` → ``(..., 20)``."""
    return np.linalg.norm(joints[..., BONES[:, 1], :] - joints[..., BONES[:, 0], :], axis=-1)


def hand_length(joints: np.ndarray) -> np.ndarray:
    """Wrist → middle fingertip path length along the middle chain: ``(..., 21, 3)`` → ``(...)``."""
    chain = np.asarray(CHAINS["middle"])
    segments = joints[..., chain[1:], :] - joints[..., chain[:-1], :]
    return np.linalg.norm(segments, axis=-1).sum(axis=-1)


def mirror(motion: np.ndarray) -> np.ndarray:
    """Reflect a two-hand motion in the y–z plane and swap the hands.

    ``(..., 2, 21, 3)`` → same shape. Negating x turns a left hand into a right hand, so the hands swap roles:
    ``mirror(mirror(x)) == x`` exactly.
    """
    motion = np.asarray(motion)
    if motion.ndim < 3 or motion.shape[-3:] != (NUM_HANDS, NUM_JOINTS, 3):
        raise ValueError(f"mirror expects (..., 2, 21, 3), got {motion.shape}")
    out = motion[..., ::-1, :, :].copy()
    out[..., 0] = -out[..., 0]
    return out
