"""The autoregressive family end to end on tiny models: tokenizer and prefix-LM runs on the shared runner (exact
resume, validation, best checkpoint), an LM that overfits its clips' codes, and the AR pipeline (valid hands,
seeds, long takes, continuation, refused modes) behind the same loader as diffusion, from the CLI too."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from handx.cli.main import main
from handx.errors import HandxInputError
from handx.skeleton import bone_lengths
from handx.models.ar import ARConfig
from handx.models.tokenizer import TokenizerConfig
from handx.motion import Triplet
from handx.pipelines import load_pipeline, make_settings
from handx.pipelines.ar import ARSettings, load_tokenizer
from handx.representations import local288
from handx.runs import latest_checkpoint, open_run
from handx.sampling.condition import Condition
from handx.synth.corpus import write_synthetic
from handx.train.ar import ARTrainConfig, encode_clips, train_ar
from handx.train.data import TextMotionData
from handx.train.tokenizer import TokenizerTrainConfig, train_tokenizer

TINY_TOKENIZER = TokenizerConfig(width=32, depth=1, levels=(5, 5, 5))
TINY_LM = ARConfig.preset("tiny")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("ar") / "store"
    write_synthetic(12, 0, root, progress=False)
    assert main(["data", "split", str(root), "--test", "0.25", "--by", "clip"]) == 0
    return root


def _tokenizer_cfg(store, out, **fields):
    return TokenizerTrainConfig(data=str(store), out=str(out), preset="tiny", batch_size=8, window=16, lr=3e-3,
                                warmup=5, log_every=5, **{"steps": 40, "eval_every": 20, "save_every": 20, **fields})


@pytest.fixture(scope="module")
def tokenizer_run(store, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "tokenizer"
    train_tokenizer(_tokenizer_cfg(store, run, steps=150, eval_every=50, save_every=50), progress=False,
                    model_config=TINY_TOKENIZER)
    return run


@pytest.fixture(scope="module")
def ar_run(store, tokenizer_run, tmp_path_factory):
    """A tiny LM trained on every clip (no split) without text dropout: it should learn the clips' codes."""
    run = tmp_path_factory.mktemp("runs") / "ar"
    cfg = ARTrainConfig(data=str(store), out=str(run), tokenizer=str(tokenizer_run), steps=400, batch_size=12,
                        lr=3e-3, warmup=10, cond_drop=0.0, split=None, eval_every=200, save_every=200,
                        log_every=25, text_encoder="glove")
    train_ar(cfg, progress=False, model_config=TINY_LM)
    return run


def test_tokenizer_run_validates_keeps_the_best_and_learns(tokenizer_run):
    lines = [json.loads(line) for line in (tokenizer_run / "metrics.jsonl").read_text().splitlines()]
    checks = [line for line in lines if "val_mpjpe" in line]
    assert [c["step"] for c in checks] == [50, 100, 150]
    assert all(0 < c["val_usage"] <= 1 and c["val_perplexity"] >= 1 for c in checks)
    losses = [line["total"] for line in lines if "total" in line]
    assert losses[-1] < 0.7 * losses[0]
    best = json.loads((tokenizer_run / "best" / "state.json").read_text())["best"]
    assert best["metric"] == "val_mpjpe" and best["value"] == min(c["val_mpjpe"] for c in checks)
    model, stats = load_tokenizer(tokenizer_run)  # loads on its own, from its best checkpoint
    assert model.config == TINY_TOKENIZER and not model.training and stats.mean.shape == (local288.NUM_FEATURES,)


def test_an_interrupted_tokenizer_run_resumes_exactly(store, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train_tokenizer(_tokenizer_cfg(store, straight), progress=False, model_config=TINY_TOKENIZER)
    train_tokenizer(_tokenizer_cfg(store, resumed, stop_at=20), progress=False, model_config=TINY_TOKENIZER)
    assert latest_checkpoint(resumed).name == "step-00000020"
    train_tokenizer(_tokenizer_cfg(store, resumed), progress=False, model_config=TINY_TOKENIZER)
    a = load_file(str(latest_checkpoint(straight) / "model.safetensors"))
    b = load_file(str(latest_checkpoint(resumed) / "model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)


def test_a_tiny_prefix_lm_learns_its_clips_codes_and_decodes_valid_hands(store, ar_run):
    opened = open_run(ar_run, kind="ar")
    assert (ar_run / "tokenizer" / "config.json").is_file()  # self-contained: its own copy of the tokenizer
    checks = [json.loads(line) for line in (ar_run / "metrics.jsonl").read_text().splitlines()
              if "val_loss" in json.loads(line)]
    assert [c["step"] for c in checks] == [200, 400]  # the store's test split (trained on here too)
    assert checks[-1]["val_loss"] < checks[0]["val_loss"] and checks[-1]["val_accuracy"] > 0.9
    pipeline = load_pipeline(opened)
    assert pipeline.family == "ar" and pipeline.frames == 60

    data = TextMotionData(str(store), representation=local288.NAME)
    data.prepare(None, progress=False)
    codes = encode_clips(pipeline.tokenizer, pipeline.stats, data)[0]  # (12, 30) the clips' own codes
    first = data.items[data.items[:, 2] == 0]
    triplets = [Triplet(*texts) for texts in zip(*data.texts_of(first))]
    decoded = pipeline._decode_codes(triplets, None, ARSettings(greedy=True, guidance=1.0), seed=0, tokens=30)
    accuracy = float((decoded.numpy() == codes[first[:, 1]]).mean())
    assert accuracy > 0.9, accuracy

    motion = pipeline.generate(triplets[:2], num=2, seed=0, settings=ARSettings(greedy=True, guidance=1.0))
    assert motion.shape == (4, 60, 2, 21, 3) and motion.dtype == np.float32 and np.isfinite(motion).all()
    bones = bone_lengths(motion.astype(np.float64))  # (4, 60, 2, 20): one skeleton per hand, every frame
    assert np.abs(bones - bones[:, :1]).max() < 1e-4
    np.testing.assert_array_equal(motion[0], motion[1])  # greedy: one motion per text


def test_sampling_seeds_long_takes_and_continuation(ar_run, store):
    pipeline = load_pipeline(ar_run)
    triplet = Triplet("the left hand waves", "the right hand makes a fist", "the hands stay apart")
    settings = make_settings(pipeline, guidance=2.0, steps=10, temperature=1.5)  # options it lacks are left out
    settings = dataclasses.replace(settings, top_p=None)  # the whole distribution: seeds must differ
    assert isinstance(settings, ARSettings) and settings.guidance == 2.0
    a = pipeline.generate([triplet], num=2, seed=1, settings=settings)
    np.testing.assert_array_equal(a, pipeline.generate([triplet], num=2, seed=1, settings=settings))
    assert not np.allclose(a, pipeline.generate([triplet], num=2, seed=2, settings=settings))

    take = pipeline.generate_take([triplet, triplet], overlap=10, num=1, seed=0, settings=settings)
    assert take.shape == (1, 60 + 50, 2, 21, 3) and np.isfinite(take).all()
    assert pipeline.generate_take([triplet], length=150, num=1, settings=settings).shape[1] == 150

    from handx.io.store import Store

    clip = Store(store).motion(0)
    condition = Condition("continue", clip, k=10)
    out = pipeline.generate([triplet], num=2, seed=0, constraints=condition, settings=settings)
    np.testing.assert_allclose(out[:, :10], np.broadcast_to(clip[:10], out[:, :10].shape), atol=1e-5)
    assert pipeline.constrained_joints(condition)[:10].min() == 1 and pipeline.constrained_joints(condition)[10:].max() == 0
    with pytest.raises(HandxInputError, match="cannot generate with a 'wrists' condition; it supports: continue"):
        pipeline.generate([triplet], constraints=Condition("wrists", clip), settings=settings)


def test_ar_runs_train_and_generate_from_the_cli(store, tokenizer_run, tmp_path, capsys):
    run = tmp_path / "cli-ar"
    assert main(["train", "ar", "--data", str(store), "--tokenizer", str(tokenizer_run), "--out", str(run),
                 "--steps", "4", "--batch-size", "4", "--eval-every", "4", "--text-encoder", "glove",
                 "--no-progress"]) == 0
    checks = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("val_loss" in c and "val_accuracy" in c for c in checks)  # the store's test split validates
    out = tmp_path / "gen.npz"
    assert main(["generate", "--ckpt", str(run), "--left", "waves", "--right", "rests", "--relation", "apart",
                 "--num", "2", "--top-p", "0.9", "--out", str(out)]) == 0
    with np.load(out) as saved:
        assert saved["joints"].shape == (2, 60, 2, 21, 3)
    assert "generated 2 motion(s)" in capsys.readouterr().out


def test_balanced_windows_see_a_small_store_as_often_as_a_large_one():
    from handx.train.tokenizer import window_clips

    keys = np.array([(0, c) for c in range(990)] + [(1, c) for c in range(10)])  # (1000, 2): 1 % in store 1
    rng = np.random.default_rng(0)
    plain = keys[window_clips(keys, rng, 20_000, False), 0]
    picked = keys[window_clips(keys, rng, 20_000, True)]  # (20000, 2)
    balanced = picked[:, 0]
    assert abs(plain.mean() - 0.01) < 0.005 and abs(balanced.mean() - 0.5) < 0.02
    small = picked[balanced == 1, 1]
    assert set(np.unique(small)) <= set(range(10)) and len(np.unique(small)) == 10  # every clip of it is drawn
