"""Generator families behind one protocol (handx.pipelines): loading by run kind, settings, conditioning modes."""

from __future__ import annotations

import numpy as np
import pytest

from handx.errors import HandxInputError
from handx.io.store import Store
from handx.motion import Triplet
from handx.pipelines import load_pipeline, make_settings
from handx.sampling.generate import Condition
from handx.synth.corpus import write_synthetic

TEXTS = (Triplet("The left hand makes a fist.", "The right hand waves.", "The hands stay apart."),
         Triplet("The left hand points.", "The right hand opens.", "The hands clap together."))


@pytest.fixture(scope="module")
def pipeline():
    return load_pipeline("handx-cpu")


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
