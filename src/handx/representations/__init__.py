"""Per-frame motion representations: clips ``(..., T, 2, 21, 3)`` ↔ features ``(..., T, F)``, exactly.

* ``joints168``: 42 joints × (x, y, z, scalar bend), the diffusion model's features (reference §1.5);
* ``local288``: root motion, root rotations, bends, local joint positions and velocities, the autoregressive
  model's features (reference §1.6).

Each is a :class:`~handx.representations.base.Representation` with a
:class:`~handx.representations.base.Layout` naming the hand, joint and channel of every column;
:class:`~handx.representations.stats.FeatureStats` normalises either; :func:`get_representation` looks one up
by name.

:mod:`~handx.representations.positions126` is the evaluator's input (centred joint positions, normalised with
fitted statistics), shared by its training and by evaluation; it is not decoded back to joints.
"""

from handx.representations.base import BOTH, Layout, Representation
from handx.representations.joints168 import JOINTS168
from handx.representations.local288 import LOCAL288
from handx.representations.stats import FeatureStats

REPRESENTATIONS: dict[str, Representation] = {r.name: r for r in (JOINTS168, LOCAL288)}


def get_representation(name: str) -> Representation:
    """The representation called ``name`` (one of :data:`REPRESENTATIONS`)."""
    try:
        return REPRESENTATIONS[name]
    except KeyError:
        raise ValueError(f"unknown representation {name!r}; expected one of {sorted(REPRESENTATIONS)}") from None


__all__ = ["BOTH", "REPRESENTATIONS", "FeatureStats", "Layout", "Representation", "get_representation"]
