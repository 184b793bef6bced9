"""Text → motion behind one protocol, one module per generator family (DESIGN.md, "pipelines/").

``load_pipeline(run)`` opens a run (or a built-in's name), picks the family from the run's kind and returns a
:class:`~handx.pipelines.base.TextToMotion`. Generation, evaluation and the viewer call only this (and the
family-independent :mod:`handx.pipelines.io`); a family's own module is imported here by name, so adding a
family is adding one module and one registry line.
"""

from handx.pipelines.base import FAMILIES, TextToMotion, load_pipeline, make_settings, pipeline_class

__all__ = ["FAMILIES", "TextToMotion", "load_pipeline", "make_settings", "pipeline_class"]
