"""Seeing and exporting motion: renders (video, GIF, still strips), the local web viewer, export (BVH, JSON).

Renders (``docs/viz.md``, "Renders")::

    from handx.viz.layout import RenderConfig
    from handx.viz.panels import Panel, load_panels
    from handx.viz.render import render, render_strip, render_video

    panels = [Panel(clip.motion, clip.id, texts=("left ...", "right ...", "relation ..."))]
    render_video(panels, "clip.mp4", fps=30, timeline=True)   # .mp4 (ffmpeg) or .gif (Pillow)
    render_strip(panels, "clip.png", frames=6)                # a still strip for papers

Modules: :mod:`~handx.viz.camera` (the fixed camera that frames every frame of every clip shown),
:mod:`~handx.viz.draw` (palette, skeletons, text), :mod:`~handx.viz.timeline` (motion-code events),
:mod:`~handx.viz.panels` (what each panel shows), :mod:`~handx.viz.layout` (sizes),
:mod:`~handx.viz.render` (frames, strips), :mod:`~handx.viz.video` (mp4, GIF, PNG writers).
"""
