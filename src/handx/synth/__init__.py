"""Procedural two-hand motion with ground-truth event programs and texts (tests and demos).

Public API::

    from handx.synth import generate, generate_clip, SynthClip, PRIMITIVES, INTERACTIONS

    clip = generate_clip(seed=0, index=3)          # SynthClip: motion (60, 2, 21, 3), program, texts
    clip = generate_clip(0, 3, kind="clap")         # force an interaction or a per-hand primitive
    for clip in generate(n=1000, seed=0): ...      # clip i is the same for every n

Both hands move in most clips, as in HandX (whose clips passed an intensity filter, reference Appendix B): each
hand performs a sequence of 2–4 finger primitives, often with a wrist motion overlaid, around the interaction.

See :mod:`handx.synth.hand` (forward kinematics), :mod:`handx.synth.shapes` (hand shapes),
:mod:`handx.synth.timeline` (minimum-jerk moves), :mod:`handx.synth.primitives` (per-hand primitives),
:mod:`handx.synth.sequence` (per-hand sequences), :mod:`handx.synth.interactions` (two-hand interactions),
:mod:`handx.synth.program` (events, contacts, texts) and :mod:`handx.synth.generate`.
"""

from handx.synth.generate import SynthClip, SynthConfig, generate, generate_clip
from handx.synth.hand import HandGeometry, forward_kinematics
from handx.synth.interactions import INTERACTIONS
from handx.synth.primitives import PRIMITIVES
from handx.synth.program import Event, contact_events, contact_signals, write_texts
from handx.synth.sequence import SequenceConfig

__all__ = [
    "INTERACTIONS",
    "PRIMITIVES",
    "Event",
    "HandGeometry",
    "SequenceConfig",
    "SynthClip",
    "SynthConfig",
    "contact_events",
    "contact_signals",
    "forward_kinematics",
    "generate",
    "generate_clip",
    "write_texts",
]
