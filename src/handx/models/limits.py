"""Upper bounds on network sizes read from configs: a run folder is untrusted input (docs/security.md).

A config is checked field by field and then by its parameter count before anything is allocated, so a run whose
``config.json`` asks for 10⁹ layers fails at once with an error naming the field instead of exhausting memory.
The bounds sit far above every diffusion preset (the largest, 16×768, has about 0.2 G parameters) and above the
AR model's largest, ``3B`` (about 3.0 G parameters at K = 4375).
"""

from __future__ import annotations

#: the largest value each size field of a network config may take
FIELD_LIMITS: dict[str, int] = {
    "layers": 256, "width": 16384, "latent": 16384, "heads": 256, "ff": 65536, "text_dim": 16384,
    "frames": 65536, "features": 65536, "motion_dim": 65536, "max_text_tokens": 65536, "patch": 64,
    "depth": 256, "dilation_growth": 64, "down": 8, "levels": 1024,
    "codebook": 1 << 20, "max_tokens": 65536,
}
#: the most parameters a network built from a config may have
MAX_PARAMETERS = 4_000_000_000


def check_size_field(owner: str, name: str, value: object) -> int:
    """``value`` as a positive integer within :data:`FIELD_LIMITS`, or ``ValueError`` naming ``owner.name``."""
    upper = FIELD_LIMITS.get(name, 1 << 31)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= upper:
        raise ValueError(f"{owner}.{name} must be a positive integer at most {upper}, got {value!r}")
    return value


def check_parameter_count(owner: str, count: int) -> None:
    """``ValueError`` when a config describes a network larger than :data:`MAX_PARAMETERS`."""
    if count > MAX_PARAMETERS:
        raise ValueError(f"{owner} describes {count:,} parameters, more than the {MAX_PARAMETERS:,} handx builds")
