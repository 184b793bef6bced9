"""handx: bimanual hand motion toolkit implementing HandX (CVPR 2026) end to end."""

__version__ = "0.1.0"
