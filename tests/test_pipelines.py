"""Generator families behind one protocol (handx.pipelines): loading by run kind, settings, conditioning modes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from handx.errors import HandxInputError
from handx.io.store import Store
from handx.motion import Triplet
from handx.io.sources import iter_clips
from handx.pipelines import load_pipeline, make_settings, pipeline_class
from handx.pipelines.diffusion import DiffusionPipeline, DiffusionSettings
from handx.pipelines.io import generation_record, save_generation, triplets
from handx.sampling.condition import Condition
from handx.sampling.generate import GenerateRequest
from handx.synth.corpus import write_synthetic

TEXTS = (Triplet("The left hand makes a fist.", "The right hand waves.", "The hands stay apart."),
         Triplet("The left hand points.", "The right hand opens.", "The hands clap together."))


@pytest.fixture(scope="module")
def pipeline():
    return load_pipeline("handx-cpu")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("clip") / "s"
    write_synthetic(1, 5, root, progress=False)
    return np.asarray(Store(root).motion(0))  # (60, 2, 21, 3)


def test_the_diffusion_pipeline_gives_what_its_generator_gives(pipeline):
    settings = make_settings(pipeline, steps=4, guidance=2.0)
    out = pipeline.generate(TEXTS, num=2, seed=3, settings=settings)
    assert out.shape == (4, 60, 2, 21, 3) and out.dtype == np.float32
    direct = pipeline.generator.generate_batch([TEXTS[0], TEXTS[0], TEXTS[1], TEXTS[1]], steps=4, guidance=2.0, seed=3)
    np.testing.assert_array_equal(out, direct)  # triplet-major rows, same seed, same motion
    assert not np.allclose(out[0], out[1])  # two samples of one text differ


def test_settings_keep_only_the_family_fields_and_are_checked(pipeline):
    settings = make_settings(pipeline, steps=7, temperature=0.8, guidance=None)
    assert settings.steps == 7 and settings.guidance == 2.5
    with pytest.raises(ValueError, match="sampler"):
        make_settings(pipeline, sampler="euler")


def test_conditioning_modes_go_through_the_pipeline(pipeline, tmp_path):
    write_synthetic(1, 5, tmp_path / "s", progress=False)
    clip = np.asarray(Store(tmp_path / "s").motion(0))
    out = pipeline.generate(TEXTS[:1], num=2, constraints=Condition("left-hand", clip),
                            settings=make_settings(pipeline, steps=4))
    assert out.shape == (2, 60, 2, 21, 3)
    np.testing.assert_allclose(out[:, :, 0], np.broadcast_to(clip[:, 0], out[:, :, 0].shape), atol=1e-5)


def test_an_unsupported_mode_is_refused_naming_what_the_family_supports(pipeline, tmp_path):
    class TextOnly(type(pipeline)):
        modes = frozenset()

    write_synthetic(1, 5, tmp_path / "s", progress=False)
    clip = np.asarray(Store(tmp_path / "s").motion(0))
    with pytest.raises(HandxInputError, match="cannot generate with a 'wrists' condition; it supports: none"):
        TextOnly(pipeline.generator, "run").generate(TEXTS[:1], constraints=Condition("wrists", clip))


def test_a_run_that_does_not_generate_is_refused():
    with pytest.raises(HandxInputError, match="does not generate motion"):
        load_pipeline("handx-eval-synth")


def test_the_family_class_and_its_settings_come_without_loading_weights():
    family = pipeline_class("handx-cpu")
    assert family is DiffusionPipeline and family.family == "diffusion"
    assert make_settings(family, steps=3, temperature=1.0) == DiffusionSettings(steps=3)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        make_settings(family, steps=0)
    with pytest.raises(HandxInputError, match="does not generate motion"):
        pipeline_class("handx-eval-synth")


def test_a_take_follows_one_triplet_per_segment_as_the_generator_chains_them(pipeline):
    settings = make_settings(pipeline, steps=3)
    take = pipeline.generate_take(TEXTS, length=100, overlap=12, num=2, seed=4, settings=settings)
    assert take.shape == (2, 100, 2, 21, 3) and take.dtype == np.float32 and np.isfinite(take).all()
    direct = pipeline.generator.generate(GenerateRequest(texts=TEXTS, length=100, overlap=12, num=2, seed=4,
                                                         steps=3)).joints
    np.testing.assert_array_equal(take, direct)
    default = pipeline.generate_take(TEXTS, settings=settings)  # a window per segment less the overlap of 10
    assert default.shape == (1, 2 * 60 - 10, 2, 21, 3)
    # One segment, no length: one window, the same motion as generate() gives for that triplet.
    one = pipeline.generate_take(TEXTS[:1], num=2, seed=4, settings=settings)
    np.testing.assert_array_equal(one, pipeline.generate(TEXTS[:1], num=2, seed=4, settings=settings))
    assert pipeline.generate_take(TEXTS[:1], length=40, settings=settings).shape == (1, 40, 2, 21, 3)
    with pytest.raises(ValueError, match="num must be >= 1"):
        pipeline.generate_take(TEXTS, num=0, settings=settings)
    with pytest.raises(TypeError, match="DiffusionSettings"):
        pipeline.generate_take(TEXTS, settings={"steps": 3})


def test_constrained_joints_are_what_a_hard_condition_reproduces(pipeline, clip):
    settings = make_settings(pipeline, steps=3)
    cases = {"left-hand": Condition("left-hand", clip), "wrists": Condition("wrists", clip),
             "keyframes": Condition("keyframes", clip, frames=(0, 30)), "inbetween": Condition("inbetween", clip, k=5),
             "continue": Condition("continue", clip, k=8)}
    for mode, condition in cases.items():
        weights = pipeline.constrained_joints(condition)
        assert weights.shape == (60, 2, 21) and weights.dtype == np.float32, mode
        kept = weights == 1
        assert set(np.unique(weights)) <= {0.0, 1.0} and kept.any() and not kept.all(), mode
        out = pipeline.generate(TEXTS[:1], constraints=condition, settings=settings)[0]
        np.testing.assert_array_equal(out[kept], clip[kept].astype(np.float32), err_msg=mode)
        assert np.abs(out[~kept] - clip[~kept]).max() > 1e-3, mode  # the rest is generated
    left = pipeline.constrained_joints(cases["left-hand"])
    assert (left[:, 0] == 1).all() and (left[:, 1] == 0).all()
    wrists = pipeline.constrained_joints(cases["wrists"])
    assert (wrists[:, :, 0] == 1).all() and wrists[:, :, 1:].sum() == 0
    keys = pipeline.constrained_joints(cases["keyframes"])
    assert (keys[[0, 30]] == 1).all() and keys.sum() == 2 * 42
    assert (pipeline.constrained_joints(cases["continue"])[:8] == 1).all()
    assert pipeline.constrained_joints(cases["continue"])[8:].sum() == 0
    soft = pipeline.constrained_joints(Condition("left-hand", clip, hard=False))
    assert 0.5 < soft[:, 0].min() < 1 and soft[:, 1].max() == 0  # the reference's soft core, 0.85


def test_a_generation_is_saved_with_its_texts_and_settings_and_read_back(pipeline, clip, tmp_path):
    settings = make_settings(pipeline, steps=3, hand_size=None)
    segments = triplets(["a", "d"], ["b", "e"], ["c", "f"])
    assert segments == (Triplet("a", "b", "c"), Triplet("d", "e", "f"))
    joints = pipeline.generate_take(segments, num=2, settings=settings)
    record = generation_record(pipeline.family, settings, joints, seed=0, run="handx-cpu")
    assert record == {"family": "diffusion", **settings.describe(), "seed": 0, "num": 2, "length": 110,
                      "mode": "text", "run": "handx-cpu"}
    save_generation(tmp_path / "g.npz", joints, segments, record)
    with np.load(tmp_path / "g.npz", allow_pickle=False) as data:
        np.testing.assert_array_equal(data["joints"], joints)
        assert list(data["left"]) == ["a", "d"] and list(data["two_hands_relation"]) == ["c", "f"]
        assert json.loads(str(data["settings"])) == record
    clips = list(iter_clips(tmp_path / "g.npz"))
    assert len(clips) == 2 and clips[0].extra["settings"] == record
    conditioned = generation_record("diffusion", settings, joints[:, :60], seed=5,
                                    constraints=Condition("wrists", clip))
    assert conditioned["mode"] == "wrists" and conditioned["seed"] == 5 and "run" not in conditioned
    with pytest.raises(ValueError, match="as many --left as --right"):
        triplets(["a"], ["b", "c"], ["d"])


def test_take_and_constrained_joints_refuse_a_mode_the_family_does_not_have(pipeline, clip):
    class LeftOnly(type(pipeline)):
        modes = frozenset({"left-hand"})

    left_only = LeftOnly(pipeline.generator, "run")
    for call in (lambda: left_only.generate_take(TEXTS[:1], constraints=Condition("wrists", clip)),
                 lambda: left_only.constrained_joints(Condition("wrists", clip))):
        with pytest.raises(HandxInputError, match="cannot generate with a 'wrists' condition; it supports: left-hand"):
            call()
