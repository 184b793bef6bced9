"""Tests for handx.viz renders: the camera, videos (mp4, GIF), still strips, highlights, timelines and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from handx import skeleton
from handx.errors import HandxInputError
from handx.viz import draw as dr
from handx.viz.camera import Camera
from handx.viz.panels import HIGHLIGHT_OVER, MAX_PANELS, Panel, generation_panels
from handx.viz.layout import GAP, RenderConfig, strip_layout, video_layout
from handx.viz.render import iter_frames, panel_cameras, render, render_strip, render_video
from handx.viz.video import gif_durations

SMALL = RenderConfig(width=240, height=180)


def synth(i: int) -> np.ndarray:
    from handx.synth import generate_clip

    return generate_clip(0, i).motion


@pytest.fixture(scope="module")
def real_clip(shared_data) -> np.ndarray:
    """Two seconds of real two-hand capture (ManipNet cup1, 30 fps), right wrist at the origin at frame 0."""
    from handx.io.bvh import read_bvh_pair
    from handx.motion import centre_on_right_wrist

    folder = shared_data / "manipnet" / "cup1"
    seq = read_bvh_pair(folder / "leftHand.bvh", folder / "rightHand.bvh")
    assert seq.present[300:360].all()
    return centre_on_right_wrist(seq.joints[300:360])


def read_mp4(path) -> tuple[dict, np.ndarray]:
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    frames = np.stack([np.frombuffer(f, dtype=np.uint8).reshape(h, w, 3) for f in reader])
    return meta, frames


def hue_pixels(rgb: np.ndarray, hue_degrees: float, tolerance: float = 22.0) -> int:
    """Number of saturated pixels of ``rgb`` ``(H, W, 3)`` within ``tolerance`` degrees of ``hue_degrees``."""
    hsv = np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).convert("HSV")).astype(np.float64)
    hue = hsv[..., 0] * 360.0 / 255.0
    near = np.abs((hue - hue_degrees + 180.0) % 360.0 - 180.0) <= tolerance
    return int((near & (hsv[..., 1] > 90) & (hsv[..., 2] > 40)).sum())


def crop(frame: np.ndarray, box) -> np.ndarray:
    left, top, right, bottom = box
    return frame[top:bottom, left:right]


# ----------------------------------------------------------------------------------------------------------------
# Camera


def test_camera_axes_hand_computed():
    cam = Camera.fit(np.array([[-0.1, 0, 0], [0.1, 0, 0], [0, 0, 0.1], [0, 0, -0.1]]), 200, 100, elevation=0,
                     perspective=False, margin=0)
    u, v = cam.project(np.array([[0.1, 0, 0], [0, 0, 0.1], [0, 0.3, 0]])).T
    centre = cam.project(np.zeros(3))
    assert u[0] > centre[0] and v[0] == pytest.approx(centre[1])  # +x (subject's right) → image right
    assert v[1] < centre[1] and u[1] == pytest.approx(centre[0])  # +z (up) → image up
    assert (u[2], v[2]) == pytest.approx(tuple(centre))  # orthographic: depth (+y) does not move a point
    # The tighter axis (height, 100 px for 0.2 m) sets the scale: 500 px per metre.
    assert cam.focal == pytest.approx(500.0)
    # Looking down at 30°, a point further forward (+y) appears higher up and farther away.
    tilted = Camera.fit(np.array([[0, 0, 0], [0, 0.2, 0]]), 200, 200, elevation=30)
    near, far = tilted.project(np.array([[0, 0, 0], [0, 0.2, 0]]))
    assert far[1] < near[1] and tilted.depth(np.array([0, 0.2, 0])) > tilted.depth(np.zeros(3))


@pytest.mark.parametrize("source", ["synth", "real"])
def test_camera_frames_every_joint_of_every_frame(source, request):
    motion = synth(3) if source == "synth" else request.getfixturevalue("real_clip")
    for elevation, azimuth, perspective in [(30, 0, True), (60, 35, False), (10, -40, True)]:
        cam = Camera.fit(motion, 320, 240, elevation=elevation, azimuth=azimuth, perspective=perspective,
                         margin=0.05)
        uv = cam.project(motion)  # (T, 2, 21, 2)
        assert uv.shape == motion.shape[:-1] + (2,)
        assert (uv[..., 0] >= 0.05 * 320 - 1e-6).all() and (uv[..., 0] <= 0.95 * 320 + 1e-6).all()
        assert (uv[..., 1] >= 0.05 * 240 - 1e-6).all() and (uv[..., 1] <= 0.95 * 240 + 1e-6).all()
        # Framed tightly: the motion touches the margin on at least one axis.
        span = uv.reshape(-1, 2).max(axis=0) - uv.reshape(-1, 2).min(axis=0)
        assert np.isclose(span, [0.9 * 320, 0.9 * 240], rtol=1e-6).any()
    # From behind, the subject's left hand is on the image's left.
    cam = Camera.fit(motion, 320, 240)
    wrists = cam.project(motion[:, :, skeleton.WRIST])  # (T, 2, 2)
    assert (wrists[:, skeleton.LEFT, 0] < wrists[:, skeleton.RIGHT, 0]).mean() > 0.9


def test_shared_scale_keeps_every_panel_in_frame(real_clip):
    panels = [Panel(synth(0), "a"), Panel(real_clip, "b"), Panel(synth(5) * 0.5 + 1.0, "c")]
    cams = panel_cameras(panels, SMALL)
    assert len({c.focal for c in cams}) == 1
    for p, cam in zip(panels, cams):
        uv = cam.project(p.motion)
        assert (uv >= 0).all() and (uv[..., 0] <= SMALL.width).all() and (uv[..., 1] <= SMALL.height).all()


# ----------------------------------------------------------------------------------------------------------------
# Videos


@pytest.mark.parametrize("source, fps", [("synth", 30), ("real", 15)])
def test_mp4_frames_fps_size_and_both_hands_visible(source, fps, tmp_path, request):
    motion = synth(1) if source == "synth" else request.getfixturevalue("real_clip")
    panels = [Panel(motion, source, ("left text", "right text", "relation text"))]
    out = tmp_path / "clip.mp4"
    result = render_video(panels, out, fps=fps, config=SMALL, progress=False)
    layout = video_layout(panels, SMALL)
    meta, frames = read_mp4(out)
    assert result.frames == len(frames) == motion.shape[0]
    assert meta["fps"] == pytest.approx(fps)
    assert tuple(meta["size"]) == result.size == layout.size
    assert layout.size[0] % 2 == 0 and layout.size[1] % 2 == 0
    view = layout.view_box(0)
    assert (view[2] - view[0], view[3] - view[1]) == (SMALL.width, SMALL.height)
    views = np.stack([crop(f, view) for f in frames]).astype(np.float64)  # (T, h, w, 3)
    assert (frames.reshape(len(frames), -1).std(axis=1) > 10).all()  # not blank
    changes = np.abs(np.diff(views, axis=0)).mean(axis=(1, 2, 3))  # (T - 1,)
    assert (changes > 0).mean() > 0.9  # the hands move
    for f in views.astype(np.uint8):
        assert hue_pixels(f, dr.HAND_HUES[0]) > 30 and hue_pixels(f, dr.HAND_HUES[1]) > 30
    # Every joint of every frame projects inside the view.
    (cam,) = panel_cameras(panels, SMALL)
    uv = cam.project(motion)
    assert (uv >= 0).all() and (uv[..., 0] < SMALL.width).all() and (uv[..., 1] < SMALL.height).all()


def test_gif_frame_count_durations_and_loop(tmp_path):
    motion = synth(2)[:40]
    out = tmp_path / "clip.gif"
    render_video([Panel(motion, "gif")], out, fps=30, config=SMALL, progress=False)
    with Image.open(out) as gif:
        assert gif.n_frames == 40 and gif.info.get("loop") == 0
        durations = []
        for k in range(gif.n_frames):
            gif.seek(k)
            durations.append(gif.info["duration"])
    assert durations == gif_durations(40, 30) and set(durations) <= {30, 40}
    assert sum(durations) == pytest.approx(40 / 30 * 1000, abs=10)


def test_grid_pads_shorter_clips_and_lays_out_titles():
    panels = [Panel(synth(0), "first"), Panel(synth(1)[:30], "second"), Panel(synth(2)[:45], "third")]
    layout, total, frames = iter_frames(panels, config=SMALL)
    assert total == 60 and layout.size[0] == 3 * SMALL.width + 2 * GAP
    frames = list(frames)
    assert len(frames) == 60 and frames[0].shape == (layout.size[1], layout.size[0], 3)
    for i in range(3):  # each panel has a title bar with dark text
        x, y = layout.origin(i)
        title = frames[0][y:y + layout.title_height, x:x + SMALL.width]
        assert (title.min(axis=2) < 100).sum() > 20
    # The 30-frame clip holds its last frame: its view stops changing, the others do not.
    view = [layout.view_box(i) for i in range(3)]
    still = [np.array_equal(crop(frames[t], view[1]), crop(frames[30], view[1])) for t in range(31, 60)]
    assert all(still) and not np.array_equal(crop(frames[40], view[0]), crop(frames[59], view[0]))


def test_highlight_colour_only_with_a_mask():
    motion = synth(4)
    mask = np.zeros((60, 2, 21), dtype=bool)
    mask[:, skeleton.LEFT] = True  # the left hand given (hand reaction)
    mask[:, skeleton.RIGHT, skeleton.WRIST] = True
    plain, marked = (next(iter_frames([Panel(motion, "p", highlight=m)], config=SMALL)[2]) for m in (None, mask))
    box = video_layout([Panel(motion)], SMALL).view_box(0)
    assert hue_pixels(crop(plain, box), dr.HIGHLIGHT_HUE) == 0
    assert hue_pixels(crop(marked, box), dr.HIGHLIGHT_HUE) > 100
    assert hue_pixels(crop(marked, box), dr.HAND_HUES[0]) > 30  # the bones keep the hand's colour


def test_timeline_rows_and_playhead_moves():
    from handx.features.codes import motion_codes
    from handx.viz.timeline import NUM_ROWS, timeline_rows

    panels = [Panel(synth(6), "timeline")]
    rows = timeline_rows(motion_codes(panels[0].motion))
    assert len(rows) == NUM_ROWS and any(row.bars for row in rows)
    assert all(0 <= b.start < b.end <= 60 and 0 <= b.lane < b.lanes for row in rows for b in row.bars)
    layout, total, frames = iter_frames(panels, config=SMALL, timeline=True)
    assert layout.timeline_rows == NUM_ROWS
    frames = list(frames)
    box = layout.timeline_box(0)
    region = (box.x, box.y, box.x + box.width, box.y + layout.timeline_rows * box.row_height)

    def playhead_column(frame):
        red = crop(frame, region).astype(int)
        hits = (red[..., 0] > 180) & (red[..., 1] < 80) & (red[..., 2] < 90)
        cols = np.flatnonzero(hits.sum(axis=0) >= 0.8 * hits.shape[0])
        assert len(cols), "no playhead"
        return box.x + cols.mean()

    first, last = playhead_column(frames[0]), playhead_column(frames[-1])
    assert first < last
    assert first == pytest.approx(box.frame_x(0, total), abs=2) and last == pytest.approx(box.frame_x(59, total),
                                                                                            abs=2)
    assert layout.size[1] > video_layout(panels, SMALL).size[1]  # the timeline adds rows below


def test_png_strip_size_and_cells(tmp_path):
    panels = [Panel(synth(0), "gt", ("l", "r", "both")), Panel(synth(1), "generated", ("l", "r", "both"))]
    out = tmp_path / "strip.png"
    result = render_strip(panels, out, frames=4, config=SMALL, progress=False)
    layout = strip_layout(panels, 4, SMALL)
    with Image.open(out) as im:
        image = np.asarray(im.convert("RGB"))
    assert image.shape[1] == 4 * SMALL.width
    assert image.shape[0] == 2 * layout.panel_size[1] + GAP == result.size[1]
    for i in range(2):
        for k in range(4):
            cell = crop(image, layout.view_box(i, k))
            assert hue_pixels(cell, dr.HAND_HUES[0]) > 30 and hue_pixels(cell, dr.HAND_HUES[1]) > 30


def test_wrapped_captions_fit_and_end_with_ellipsis():
    face = dr.font(13)
    text = " ".join(["the left hand curls its index finger slowly"] * 12)
    lines = dr.wrap_text(text, face, 200, 2)
    assert len(lines) == 2 and lines[-1].endswith("…")
    assert all(face.getlength(line) <= 200 for line in lines)
    assert dr.wrap_text("short", face, 200, 2) == ["short"]
    assert dr.fit_text("x" * 500, face, 50).endswith("…")


def test_generation_panels_mark_the_joints_a_condition_keeps():
    weights = np.zeros((60, 2, 21), dtype=np.float32)  # as pipeline.constrained_joints gives them
    weights[:, 0] = 1.0  # left hand, exactly
    weights[:10, 1, 0] = 0.85  # right wrist, soft, first 10 frames
    weights[10:12, 1, 0] = HIGHLIGHT_OVER  # the start of a soft ramp: not marked
    motion = np.stack([synth(0), synth(1)])
    panels = generation_panels(motion, [("a", "b", "c"), ("d", "e", "f")], highlight=weights, condition=synth(2))
    assert [p.title for p in panels] == ["sample 0", "sample 1", "condition"]
    assert panels[0].texts == ("a Then: d", "b Then: e", "c Then: f") and panels[2].texts is None
    for panel in panels:
        marks = panel.highlight
        assert marks.shape == (60, 2, 21) and marks.dtype == bool
        assert marks[:, 0].all() and marks[:10, 1, 0].all()
        assert marks[:, 1, 1:].sum() == 0 and marks[10:, 1].sum() == 0
    short = generation_panels(motion[:, :40], [("a", "b", "c")], highlight=weights > 0, condition=synth(2))
    assert short[0].highlight.shape == (40, 2, 21) and short[2].highlight.shape == (60, 2, 21)  # bool works too


# ----------------------------------------------------------------------------------------------------------------
# Bad input


def test_bad_inputs_name_the_problem(tmp_path):
    panel = Panel(synth(0), "x")
    with pytest.raises(HandxInputError, match="unknown output type '.avi'"):
        render([panel], tmp_path / "clip.avi")
    with pytest.raises(HandxInputError, match="nothing to render"):
        render([], tmp_path / "clip.mp4")
    with pytest.raises(HandxInputError, match=f"at most {MAX_PANELS}"):
        render([panel] * (MAX_PANELS + 1), tmp_path / "clip.mp4")
    with pytest.raises(HandxInputError, match="still strip"):
        render_video([panel], tmp_path / "clip.png")
    with pytest.raises(HandxInputError, match="highlight must have shape"):
        Panel(synth(0), "x", highlight=np.zeros((59, 2, 21), dtype=bool))
    with pytest.raises(HandxInputError, match="shape"):
        Panel(np.zeros((60, 21, 3)), "flat")
    with pytest.raises(ValueError, match="RenderConfig.width"):
        RenderConfig(width=10)
    assert not list(tmp_path.iterdir())  # nothing written, no temporary left behind


# ----------------------------------------------------------------------------------------------------------------
# CLI


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from handx.synth.corpus import write_synthetic

    root = tmp_path_factory.mktemp("render") / "store"
    write_synthetic(4, 0, root, progress=False)
    return root


def test_cli_render_store_clips_and_several_inputs(store, tmp_path, capsys):
    from handx.cli.main import main
    from handx.io.store import Store

    ids = [r.id for r in Store(store).records]
    out = tmp_path / "one.mp4"
    assert main(["render", str(store), "--clips", ids[1], "--out", str(out), "--no-progress"]) == 0
    meta, frames = read_mp4(out)
    assert len(frames) == 60 and meta["fps"] == pytest.approx(30)
    assert "rendered 1 clip(s)" in capsys.readouterr().out
    # Clips gathered from each input in order: two from the store, then every clip of an .npy batch.
    batch = tmp_path / "batch.npy"
    np.save(batch, np.stack([synth(7), synth(8)]))
    grid = tmp_path / "grid.png"
    assert main(["render", str(store), "--clips", f"{ids[0]},{ids[2]}", str(batch), "--out", str(grid),
                 "--frames", "3", "--size", "200x150", "--no-progress"]) == 0
    with Image.open(grid) as im:
        assert im.size[0] == 3 * 200
    assert "rendered 4 clip(s)" in capsys.readouterr().out


def test_cli_render_errors(store, tmp_path, capsys):
    from handx.cli.main import main

    assert main(["render", str(store), "--out", str(tmp_path / "x.avi")]) == 2
    assert "unknown output type" in capsys.readouterr().err
    assert main(["render", str(store), "--clips", "nope", "--out", str(tmp_path / "x.mp4")]) == 2
    assert "no clip with id 'nope'" in capsys.readouterr().err
    many = tmp_path / "many.npy"
    np.save(many, np.repeat(synth(0)[None, :10], MAX_PANELS + 1, axis=0))
    assert main(["render", str(many), "--out", str(tmp_path / "x.mp4")]) == 2
    assert f"at most {MAX_PANELS}" in capsys.readouterr().err
    assert main(["generate", "--ckpt", str(tmp_path / "no-run"), "--left", "a", "--right", "b", "--relation", "c",
                 "--out", str(tmp_path / "g.npz"), "--render", str(tmp_path / "g.webm")]) == 2
    assert "unknown output type '.webm'" in capsys.readouterr().err  # refused before loading anything


def test_generate_render_writes_a_video_of_the_samples(store, tmp_path):
    from handx.cli.main import main
    from handx.train.diffusion import TrainConfig, train_diffusion

    run = tmp_path / "run"
    train_diffusion(TrainConfig(data=str(store), out=str(run), steps=2, batch_size=4, save_every=2, split=None),
                    progress=False)
    npz, mp4 = tmp_path / "gen.npz", tmp_path / "gen.mp4"
    assert main(["generate", "--ckpt", str(run), "--left", "a", "--right", "b", "--relation", "c", "--num", "2",
                 "--steps", "2", "--out", str(npz), "--render", str(mp4)]) == 0
    meta, frames = read_mp4(mp4)
    assert len(frames) == 60
    with np.load(npz) as data:
        panels = generation_panels(data["joints"], [("a", "b", "c")])
    assert tuple(meta["size"]) == video_layout(panels).size  # two samples side by side
