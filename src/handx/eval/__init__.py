"""Evaluation: the HandX benchmark metrics (reference §7.3) and physical plausibility checks beyond the paper.

- :mod:`handx.eval.metrics`: FID, R-precision, matching score, diversity, multimodality, MPJPE and contact
  precision / recall / F1 (reference §7.3);
- :mod:`handx.eval.plausibility`: hand–hand interpenetration, jerk, bone-length drift and contact sliding.

Definitions and deviations from the reference code: ``docs/metrics.md``.
"""
