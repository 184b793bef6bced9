"""The text–motion evaluator: its preprocessing, networks and loss, a tiny model that learns to retrieve, exact
resume, loading a run on its own, and the CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from handx.cli.main import main
from handx.errors import HandxInputError
from handx.evaluator import Evaluator
from handx.io.store import Store
from handx.models.evaluator import TMR, EvaluatorConfig
from handx.representations.positions126 import Preprocess, centre
from handx.retrieval import r_precision
from handx.synth.corpus import write_synthetic
from handx.runs import latest_checkpoint, load_checkpoint, read_config
from handx.train.evaluator import (
    EvaluatorLossWeights,
    EvaluatorTrainConfig,
    evaluator_loss,
    gaussian_kl,
    info_nce,
    train_evaluator,
)
from handx.text import encode_branches

BRANCHES = ("left", "right", "two_hands_relation")
TINY = EvaluatorConfig.preset("tiny")


def _motions(rng: np.random.Generator, n: int = 6, frames: int = 60) -> np.ndarray:
    """Random walks of joints around plausible positions, ``(n, T, 2, 21, 3)`` metres."""
    base = rng.normal(scale=0.05, size=(n, 1, 2, 21, 3)) + np.array([-0.15, 0.0, 0.0])[None, None, None, None]
    return base + np.cumsum(rng.normal(scale=0.003, size=(n, frames, 2, 21, 3)), axis=1)


# ---------------------------------------------------------------------------------------------- preprocessing


def test_preprocess_round_trips_through_json():
    rng = np.random.default_rng(0)
    pre = Preprocess.fit([_motions(rng)], centring="frame")
    again = Preprocess.from_json(json.loads(json.dumps(pre.to_json())))
    assert again.centring == "frame"
    np.testing.assert_array_equal(again.mean, pre.mean)
    np.testing.assert_array_equal(again.std, pre.std)
    x = _motions(rng, 2)
    np.testing.assert_array_equal(again(x), pre(x))


@pytest.mark.parametrize("centring", ["clip", "frame"])
def test_centring_removes_a_global_translation(centring):
    rng = np.random.default_rng(1)
    x = _motions(rng)
    pre = Preprocess.fit([x], centring=centring)
    shifted = x + rng.normal(size=(x.shape[0], 1, 1, 1, 3))  # one offset per clip
    np.testing.assert_allclose(pre(shifted), pre(x), atol=1e-4)


def test_frame_centring_removes_any_per_frame_translation_and_clip_centring_keeps_it():
    rng = np.random.default_rng(2)
    x = _motions(rng)
    path = rng.normal(scale=0.1, size=(x.shape[0], x.shape[1], 1, 1, 3))  # a different offset every frame
    np.testing.assert_allclose(centre(x + path, "frame"), centre(x, "frame"), atol=1e-12)
    moved = centre(x + path, "clip") - centre(x, "clip")  # (N, T, 126): the path relative to frame 0
    np.testing.assert_allclose(moved[:, :, :3], (path[:, :, 0, 0] - path[:, :1, 0, 0]), atol=1e-12)
    clip = centre(x, "clip").reshape(*x.shape[:2], 2, 21, 3)
    np.testing.assert_array_equal(clip[:, 0, 1, 0], 0.0)  # the right wrist starts at the origin


def test_centred_features_are_hand_major():
    x = np.zeros((1, 2, 2, 21, 3))
    x[0, :, 0, 5] = [1.0, 2.0, 3.0]  # left hand, joint 5
    np.testing.assert_array_equal(centre(x, "clip")[0, 0, 15:18], [1.0, 2.0, 3.0])


@pytest.mark.parametrize("centring", ["clip", "frame"])
def test_normalised_training_features_have_zero_mean_and_unit_std(centring):
    rng = np.random.default_rng(3)
    clips = _motions(rng, 12)
    pre = Preprocess.fit([clips[:5], clips[5:]], centring=centring)  # streamed in two batches
    features = pre(clips).reshape(-1, 126)
    varying = centre(clips, centring).reshape(-1, 126).std(axis=0) > 1e-4
    np.testing.assert_allclose(features.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(features.std(axis=0)[varying], 1.0, atol=1e-3)
    np.testing.assert_array_equal(features[:, ~varying], 0.0)  # constant features (the centring wrist) stay 0
    assert (centring == "frame") == (not varying[63:66].any())
    assert pre(clips[0]).shape == (60, 126) and pre(clips).dtype == np.float32


def test_preprocess_rejects_bad_input_clearly():
    rng = np.random.default_rng(4)
    pre = Preprocess.fit([_motions(rng)])
    with pytest.raises(ValueError, match=r"\(N, T, 2, 21, 3\).*got \(60, 2, 20, 3\)"):
        pre(np.zeros((60, 2, 20, 3)))
    bad = _motions(rng, 3)
    bad[2, 7, 1, 4, 0] = np.nan
    with pytest.raises(ValueError, match="clip 2, frame 7"):
        pre(bad)
    with pytest.raises(ValueError, match="centring must be one of clip, frame"):
        Preprocess.fit([bad[:2]], centring="wrist")
    with pytest.raises(ValueError, match=r"\(126,\)"):
        Preprocess("clip", np.zeros(125), np.ones(125))


# ---------------------------------------------------------------------------------------------- networks


def _texts(glove, texts):
    return encode_branches(glove, texts, torch.device("cpu"))


@pytest.fixture(scope="module")
def glove():
    from handx.text import GloVeEncoder

    return GloVeEncoder()


TEXTS = (["The left hand makes a fist.", "Left hand: opens up, then points.", "The left hand holds still."],
         ["The right hand taps the index finger twice.", "Right hand: relaxes.", "The right hand waves."],
         ["The hands act independently.", "The index fingertips of both hands touch.", "They never touch."])


def test_network_shapes_and_config_checks(glove):
    torch.manual_seed(0)
    model = TMR(TINY).eval()
    tokens, mask = _texts(glove, TEXTS)
    motion = torch.randn(3, 60, 126)
    mu, logvar = model.encode_motion(motion)
    assert mu.shape == logvar.shape == (3, 64)
    mu, logvar = model.encode_text(tokens, mask)
    assert mu.shape == logvar.shape == (3, 64)
    assert model.decode(mu).shape == (3, 60, 126) and model.decode(mu, 20).shape == (3, 20, 126)
    out = model(motion, tokens, mask, torch.zeros(2, 3, 64))
    torch.testing.assert_close(out.motion_z, out.motion_mu)  # zero noise: z = μ
    assert out.recon_from_text.shape == (3, 60, 126)
    with pytest.raises(ValueError, match=r"motion \(B, T ≤ 60, 126\)"):
        model.encode_motion(torch.randn(2, 61, 126))
    assert EvaluatorConfig.from_json(TINY.to_json()) == TINY
    assert EvaluatorConfig.preset("base") == EvaluatorConfig(latent=256, layers=4, heads=4, ff=1024, dropout=0.1,
                                                             attention_dropout=0.1, norm_first=False)  # reference
    with pytest.raises(ValueError, match="heads must divide latent 64"):
        dataclasses.replace(TINY, heads=3)
    with pytest.raises(ValueError, match="expected one of tiny, small, base"):
        EvaluatorConfig.preset("huge")


def test_text_head_ignores_padding_and_other_rows(glove):
    torch.manual_seed(0)
    model = TMR(TINY).eval()
    tokens, mask = _texts(glove, TEXTS)
    with torch.no_grad():
        mu, _ = model.encode_text(tokens, mask)
        padded = torch.nn.functional.pad(tokens, (0, 0, 0, 7), value=5.0)  # 7 more positions of garbage
        padded[~torch.nn.functional.pad(mask, (0, 7))] = 5.0  # and garbage under every existing pad as well
        mu_padded, _ = model.encode_text(padded, torch.nn.functional.pad(mask, (0, 7)))
        alone, _ = model.encode_text(*_texts(glove, tuple(t[1:2] for t in TEXTS)))
        changed = tokens.clone()
        changed[0, 1, 0] += 1.0  # a real token of row 1's left text
        mu_changed, _ = model.encode_text(changed, mask)
    torch.testing.assert_close(mu_padded, mu, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(alone[0], mu[1], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(mu_changed[1], mu[1], atol=1e-4)
    torch.testing.assert_close(mu_changed[[0, 2]], mu[[0, 2]], atol=1e-5, rtol=1e-5)


def test_the_branch_a_text_belongs_to_matters(glove):
    torch.manual_seed(0)
    model = TMR(TINY).eval()
    left, right, relation = TEXTS
    with torch.no_grad():
        mu, _ = model.encode_text(*_texts(glove, (left, right, relation)))
        swapped, _ = model.encode_text(*_texts(glove, (right, left, relation)))
    assert (mu - swapped).norm(dim=1).min() > 1e-3


# ---------------------------------------------------------------------------------------------- loss


def test_info_nce_matches_a_direct_computation():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(5, 8, generator=gen), torch.randn(5, 8, generator=gen)
    xn = x.double().numpy() / np.linalg.norm(x.double().numpy(), axis=1, keepdims=True)
    yn = y.double().numpy() / np.linalg.norm(y.double().numpy(), axis=1, keepdims=True)
    logits = xn @ yn.T / 0.05
    x_to_y = -np.mean([logits[i, i] - np.log(np.exp(logits[i]).sum()) for i in range(5)])
    y_to_x = -np.mean([logits[i, i] - np.log(np.exp(logits[:, i]).sum()) for i in range(5)])
    assert float(info_nce(x, y, 0.05)) == pytest.approx((x_to_y + y_to_x) / 2, rel=1e-5)
    assert float(info_nce(x, x, 0.05)) < float(info_nce(x, y, 0.05))


def test_kl_is_zero_for_identical_gaussians_and_matches_torch():
    gen = torch.Generator().manual_seed(1)
    mu, logvar = torch.randn(4, 6, generator=gen), torch.randn(4, 6, generator=gen)
    assert float(gaussian_kl(mu, logvar, mu, logvar)) == pytest.approx(0.0, abs=1e-7)
    mu2, logvar2 = torch.randn(4, 6, generator=gen), torch.randn(4, 6, generator=gen)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(mu2, (0.5 * logvar2).exp())
    torch.testing.assert_close(gaussian_kl(mu, logvar, mu2, logvar2), torch.distributions.kl_divergence(q, p).mean())


def test_loss_is_the_weighted_sum_of_its_terms(glove):
    torch.manual_seed(0)
    model = TMR(TINY)
    motion = torch.randn(3, 60, 126)
    out = model(motion, *_texts(glove, TEXTS), torch.randn(2, 3, 64))
    terms = evaluator_loss(motion, out)
    w = EvaluatorLossWeights()
    expected = (terms.recon_motion + terms.recon_text + w.kl * terms.kl + w.latent * terms.latent
                + w.contrastive * terms.contrastive)
    torch.testing.assert_close(terms.total, expected)
    assert set(terms.as_floats()) == {"total", "recon_motion", "recon_text", "kl", "latent", "contrastive"}


# ---------------------------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluator-data") / "store"
    write_synthetic(64, 0, root, progress=False)
    return root


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    run = tmp_path_factory.mktemp("evaluator-runs") / "tiny"
    cfg = EvaluatorTrainConfig(data=str(corpus), out=str(run), steps=250, batch_size=32, lr=2e-3, warmup=20,
                               save_every=250, log_every=50, eval_every=125, split=None, val_split=None)
    train_evaluator(cfg, progress=False, model_config=TINY)
    return run


def _variant0(store: Store) -> tuple[np.ndarray, list[list[str]]]:
    motions = np.stack([store.motion(i) for i in range(len(store))])
    return motions, [[r.texts[key][0] for r in store.records] for key in BRANCHES]


def test_a_tiny_evaluator_learns_to_retrieve_its_training_clips(corpus, trained):
    evaluator = Evaluator.load(trained)
    motions, texts = _variant0(Store(corpus))
    motion, text = evaluator.embed_motion(motions), evaluator.embed_text(*texts)
    assert motion.shape == text.shape == (64, 64) and motion.dtype == np.float64
    r3 = r_precision(text, motion, pool=32, top_k=3)[2]
    assert r3 >= 0.5, f"R@3 {r3:.2f} in pools of 32 (chance 0.09)"
    matched = np.linalg.norm(text - motion, axis=1).mean()
    shuffled = np.linalg.norm(text - np.roll(motion, 1, axis=0), axis=1).mean()
    assert matched < 0.8 * shuffled, (matched, shuffled)


def test_the_run_describes_itself_and_loads_deterministically(corpus, trained):
    saved = read_config(trained)
    assert saved["kind"] == "evaluator" and saved["text_encoder"] == "glove"
    assert saved["preprocess"]["centring"] == "clip" and len(saved["preprocess"]["mean"]) == 126
    assert EvaluatorConfig.from_json(saved["model"]) == dataclasses.replace(TINY, text_dim=50)
    a, b = Evaluator.load(trained), Evaluator.load(trained)
    motions, texts = _variant0(Store(corpus))
    np.testing.assert_array_equal(a.embed_motion(motions[:10]), b.embed_motion(motions[:10]))
    np.testing.assert_array_equal(a.embed_motion(motions[:10]), a.embed_motion(motions[:10]))
    np.testing.assert_array_equal(a.embed_text(*texts), a.embed_text(*texts))
    np.testing.assert_allclose(a.embed_motion(motions[:10], batch_size=3), a.embed_motion(motions[:10]), atol=1e-5)
    assert a.describe() == {"run": str(trained), "step": 250, "centring": "clip", "text_encoder": "glove-6b-50d",
                            "latent": 64}
    with pytest.raises(ValueError, match=r"\(N, 60, 2, 21, 3\)"):
        a.embed_motion(motions[0])
    with pytest.raises(ValueError, match="one text per clip"):
        a.embed_text(["a"], ["b", "c"], ["d"])


def test_loading_refuses_what_is_not_a_trained_evaluator(tmp_path, trained):
    with pytest.raises(HandxInputError, match="not a handx run"):
        Evaluator.load(tmp_path)
    diffusion = tmp_path / "diffusion"
    diffusion.mkdir()
    config = read_config(trained)
    (diffusion / "config.json").write_text(json.dumps({**config, "kind": "diffusion"}))
    with pytest.raises(HandxInputError, match="not an evaluator"):
        Evaluator.load(diffusion)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text(json.dumps(config))
    with pytest.raises(HandxInputError, match="no checkpoint"):
        Evaluator.load(empty)


def test_resumed_run_continues_exactly(corpus, tmp_path):
    common = dict(data=str(corpus), batch_size=8, save_every=3, log_every=1, eval_every=2, split=None,
                  val_split=None, warmup=2, lr=1e-3)
    config = dataclasses.replace(TINY, dropout=0.1)  # dropout masks must resume too
    train_evaluator(EvaluatorTrainConfig(out=str(tmp_path / "straight"), steps=6, **common), progress=False,
                    model_config=config)
    train_evaluator(EvaluatorTrainConfig(out=str(tmp_path / "resumed"), steps=3, **common), progress=False,
                    model_config=config)
    assert load_checkpoint(latest_checkpoint(tmp_path / "resumed")).step == 3
    train_evaluator(EvaluatorTrainConfig(out=str(tmp_path / "resumed"), steps=6, **common), progress=False)
    a = load_checkpoint(latest_checkpoint(tmp_path / "straight"))
    b = load_checkpoint(latest_checkpoint(tmp_path / "resumed"))
    assert a.step == b.step == 6
    for key in a.model:
        torch.testing.assert_close(a.model[key], b.model[key], rtol=0, atol=0)


def test_validation_retrieval_is_logged_on_the_held_out_split(corpus, tmp_path):
    from handx.io.store_ops import split_store

    store = tmp_path / "store"
    write_synthetic(24, 1, store, progress=False)
    sizes = split_store(store, {"train": 0.6, "test": 0.4}, seed=0)
    run = tmp_path / "run"
    train_evaluator(EvaluatorTrainConfig(data=str(store), out=str(run), steps=4, batch_size=4, eval_every=2,
                                         log_every=2, save_every=4), progress=False, model_config=TINY)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in rows if "val_r3" in r]
    assert [r["step"] for r in val] == [2, 4]
    assert all(r["val_pool"] == min(sizes["test"], 32) and 0 <= r["val_r1"] <= r["val_r3"] <= 1 for r in val)


def test_torchrun_two_processes_train_an_evaluator(corpus, tmp_path):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    if torchrun is None:
        pytest.skip("torchrun not installed beside this Python")
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node=2", "-m", "handx.cli.main", "train", "evaluator", "--preset",
         "tiny", "--data", str(corpus), "--out", str(run), "--steps", "2", "--batch-size", "8", "--save-every", "2",
         "--split", "none", "--no-progress"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert Evaluator.load(run).step == 2
    assert len((run / "metrics.jsonl").read_text().splitlines()) >= 1


# ---------------------------------------------------------------------------------------------- CLI


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "evaluator", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--preset", "--centring", "--val-split", "--batch-size", "--steps", "--lr", "--seed",
                 "--save-every", "--device", "--no-progress"):
        assert flag in text


def test_cli_trains_a_run_that_the_evaluator_loads(corpus, tmp_path, capsys):
    run = tmp_path / "cli-run"
    code = main(["train", "evaluator", "--data", str(corpus), "--out", str(run), "--preset", "tiny", "--steps", "2",
                 "--batch-size", "4", "--centring", "frame", "--split", "none", "--val-split", "none",
                 "--no-progress"])
    assert code == 0 and "trained to step 2" in capsys.readouterr().out
    evaluator = Evaluator.load(run)
    assert evaluator.describe()["centring"] == "frame" and evaluator.step == 2
    assert evaluator.config == dataclasses.replace(EvaluatorConfig.preset("tiny"), text_dim=50)
    assert read_config(run)["train"]["val_split"] is None
