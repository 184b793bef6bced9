"""Training and generation end to end on tiny models: overfitting, sampling near the training clips, exact
resume, conditioning through the generator, a 2-process torchrun run, and the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from handx.cli.main import main
from handx.io.store import Store
from handx.models.diffusion import DiffusionConfig, TrebleDenoiser
from handx.motion import Triplet
from handx.representations.stats import FeatureStats
from handx.sampling.condition import Condition
from handx.sampling.generate import GenerateRequest, Generator
from handx.synth.corpus import write_synthetic
from handx.runs import latest_checkpoint, load_checkpoint, read_config
from handx.train.data import TextMotionData
from handx.text import encode_branches
from handx.train.diffusion import TrainConfig, evaluate_loss, train_diffusion


@pytest.fixture(scope="module")
def eight_clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "store"
    write_synthetic(8, 0, root, progress=False)
    return root


@pytest.fixture(scope="module")
def overfit_run(eight_clips, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "overfit"
    cfg = TrainConfig(data=str(eight_clips), out=str(run), steps=650, batch_size=8, lr=3e-3, warmup=10,
                      cond_drop=0.0, save_every=650, log_every=50, split=None, ema_decay=0.0)
    train_diffusion(cfg, progress=False, model_config=DiffusionConfig(layers=2, width=128, heads=4, ff=256,
                                                                      dropout=0.0))
    return run


def _first_variant_batch(store, run):
    saved = read_config(run)
    stats = FeatureStats.from_json(saved["stats"])
    data = TextMotionData(store)
    items = data.items[data.items[:, 2] == 0]  # every clip with its first text variant
    return data, data.batch(items, stats), saved


def test_a_tiny_model_overfits_eight_clips(eight_clips, overfit_run):
    from handx.text import load_text_encoder

    _, batch, saved = _first_variant_batch(eight_clips, overfit_run)
    tokens, mask = encode_branches(load_text_encoder("minilm"), batch.texts, torch.device("cpu"))
    x0 = torch.from_numpy(batch.features)
    torch.manual_seed(0)
    model = TrebleDenoiser(DiffusionConfig.from_json(saved["model"]))
    before = evaluate_loss(model, x0, tokens, mask)
    model.load_state_dict(load_checkpoint(latest_checkpoint(overfit_run)).model)
    after = evaluate_loss(model, x0, tokens, mask)
    assert after <= before / 10, (before, after)


def test_samples_are_closest_to_the_training_clip_of_their_own_texts(eight_clips, overfit_run):
    store = Store(eight_clips)
    generator = Generator.load(overfit_run, ema=False)
    motions = np.stack([store.motion(i) for i in range(len(store))])  # (8, 60, 2, 21, 3)
    hits = 0
    for i, record in enumerate(store.records):
        texts = Triplet(record.texts["left"][0], record.texts["right"][0], record.texts["two_hands_relation"][0])
        sample = generator.generate(GenerateRequest(texts=(texts,), steps=20, guidance=1.0, seed=i)).joints[0]
        errors = np.linalg.norm(motions - sample, axis=-1).mean(axis=(1, 2, 3))  # MPJPE to each training clip
        hits += int(np.argmin(errors) == i)
    assert hits >= 7, f"only {hits} of 8 samples are nearest to their own training clip"


def test_generate_batch_agrees_with_generate_and_keeps_each_text(eight_clips, overfit_run):
    store = Store(eight_clips)
    generator = Generator.load(overfit_run, ema=False)
    triplets = [Triplet(r.texts["left"][0], r.texts["right"][0], r.texts["two_hands_relation"][0])
                for r in store.records]
    same = generator.generate_batch([triplets[0]] * 3, steps=10, guidance=1.0, seed=5)
    request = GenerateRequest(texts=(triplets[0],), num=3, steps=10, guidance=1.0, seed=5)
    np.testing.assert_array_equal(same, generator.generate(request).joints)

    batched = generator.generate_batch(triplets, steps=20, guidance=1.0, seed=0, batch_size=3)  # 3 batches
    assert batched.shape == (8, 60, 2, 21, 3)
    motions = np.stack([store.motion(i) for i in range(len(store))])
    errors = np.linalg.norm(motions[None] - batched[:, None], axis=-1).mean(axis=(2, 3, 4))  # (sample, clip)
    assert (errors.argmin(axis=1) == np.arange(8)).sum() >= 7
    again = generator.generate_batch(triplets, steps=20, guidance=1.0, seed=0, batch_size=3)
    np.testing.assert_array_equal(batched, again)


def test_conditioning_modes_reproduce_hard_constraints(eight_clips, overfit_run):
    store = Store(eight_clips)
    generator = Generator.load(overfit_run)
    clip = np.asarray(store.motion(3))
    texts = (Triplet("a", "b", "c"),)
    left = generator.generate(GenerateRequest(texts=texts, num=2, steps=8, condition=Condition("left-hand", clip)))
    np.testing.assert_allclose(left.joints[:, :, 0], np.broadcast_to(clip[:, 0], left.joints[:, :, 0].shape),
                               atol=1e-5)
    ends = generator.generate(GenerateRequest(texts=texts, steps=8, condition=Condition("inbetween", clip, k=5)))
    np.testing.assert_allclose(ends.joints[0, :5], clip[:5], atol=1e-5)
    np.testing.assert_allclose(ends.joints[0, -5:], clip[-5:], atol=1e-5)
    keys = generator.generate(GenerateRequest(texts=texts, steps=8,
                                              condition=Condition("keyframes", clip, frames=(0, 30))))
    np.testing.assert_allclose(keys.joints[0, [0, 30]], clip[[0, 30]], atol=1e-5)
    wrists = generator.generate(GenerateRequest(texts=texts, steps=8, condition=Condition("wrists", clip)))
    np.testing.assert_allclose(wrists.joints[0, :, :, 0], clip[:, :, 0], atol=1e-5)


def test_long_take_has_the_requested_length_and_no_seam_jump(eight_clips, overfit_run):
    store = Store(eight_clips)
    generator = Generator.load(overfit_run)
    texts = tuple(Triplet(r.texts["left"][0], r.texts["right"][0], r.texts["two_hands_relation"][0])
                  for r in store.records[:2])
    take = generator.generate(GenerateRequest(texts=texts, sampler="ddpm", steps=100, length=130)).joints[0]
    assert take.shape == (130, 2, 21, 3) and np.isfinite(take).all()
    speed = np.linalg.norm(np.diff(take, axis=0), axis=-1).max(axis=(1, 2))  # (129,) largest joint step
    data_speed = np.linalg.norm(np.diff(np.stack([store.motion(i) for i in range(8)]), axis=1), axis=-1)
    assert speed.max() <= np.percentile(data_speed.max(axis=(2, 3)), 99.5) * 1.5


def test_resumed_run_continues_exactly(eight_clips, tmp_path):
    common = dict(data=str(eight_clips), batch_size=4, save_every=3, log_every=1, split=None, preset="tiny",
                  warmup=2)
    train_diffusion(TrainConfig(out=str(tmp_path / "straight"), steps=6, **common), progress=False)
    train_diffusion(TrainConfig(out=str(tmp_path / "resumed"), steps=6, stop_at=3, **common), progress=False)
    assert load_checkpoint(latest_checkpoint(tmp_path / "resumed")).step == 3  # interrupted mid-schedule
    train_diffusion(TrainConfig(out=str(tmp_path / "resumed"), steps=6, **common), progress=False)
    a = load_checkpoint(latest_checkpoint(tmp_path / "straight"))
    b = load_checkpoint(latest_checkpoint(tmp_path / "resumed"))
    assert a.step == b.step == 6
    for key in a.model:
        torch.testing.assert_close(a.model[key], b.model[key], rtol=0, atol=0)
        torch.testing.assert_close(a.ema[key], b.ema[key], rtol=0, atol=0)
    losses = lambda run: [json.loads(line)["total"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert losses(tmp_path / "straight") == losses(tmp_path / "resumed")


def test_learning_rate_warms_up_then_follows_a_cosine_to_its_floor():
    from handx.train.diffusion import learning_rate

    cfg = TrainConfig(data="x", out="y", steps=1000, warmup=100, lr=1e-3, min_lr=0.1)
    rates = np.array([learning_rate(cfg, k) for k in range(1000)])
    np.testing.assert_allclose(rates[:100], 1e-3 * np.arange(1, 101) / 100)  # linear warm-up to the peak
    assert rates[100] == pytest.approx(1e-3)
    assert np.all(np.diff(rates[100:]) <= 1e-18)  # never rises after the warm-up
    assert rates[550] == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5), rel=1e-2)  # halfway down the cosine
    assert rates[-1] == pytest.approx(1e-4, rel=1e-3)  # ends at min_lr · lr
    flat = TrainConfig(data="x", out="y", steps=1000, warmup=10, lr=1e-3, schedule="constant")
    assert learning_rate(flat, 999) == 1e-3
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(data="x", out="y", schedule="linear")


def test_held_out_checks_are_logged_and_the_best_is_kept(tmp_path):
    store = tmp_path / "store"
    write_synthetic(24, 5, store, progress=False)
    from handx.io.store_ops import split_store

    split_store(store, {"train": 0.75, "test": 0.25}, by="clip")
    run = tmp_path / "run"
    cfg = TrainConfig(data=str(store), out=str(run), steps=12, batch_size=8, lr=3e-3, warmup=2, eval_every=4,
                      save_every=100, val_items=6, preset="tiny")
    train_diffusion(cfg, progress=False)
    checks = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if "val_loss" in line]
    assert [c["step"] for c in checks] == [4, 8, 12] and all(c["samples"] == c["step"] * 8 for c in checks)
    best = json.loads((run / "best" / "state.json").read_text())
    assert best["best"]["value"] == min(c["val_loss"] for c in checks)
    assert best["step"] == min(checks, key=lambda c: c["val_loss"])["step"]
    assert (run / "best" / "ema.safetensors").is_file()
    saved = read_config(run)
    assert np.asarray(saved["skeleton"]["lengths"]).shape == (2, 20)  # the training set's median hand


def test_checkpoint_describes_itself(eight_clips, overfit_run):
    saved = read_config(overfit_run)
    assert saved["kind"] == "diffusion" and saved["text_encoder"] == "minilm"
    config = DiffusionConfig.from_json(saved["model"])
    model = TrebleDenoiser(config)
    model.load_state_dict(load_checkpoint(latest_checkpoint(overfit_run), optimizer=False).ema)
    assert (latest_checkpoint(overfit_run) / "model.safetensors").is_file()


def test_torchrun_two_processes_train_and_checkpoint(eight_clips, tmp_path):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    if torchrun is None:
        pytest.skip("torchrun not installed beside this Python")
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node=2", "-m", "handx.cli.main", "train", "diffusion",
         "--data", str(eight_clips), "--out", str(run), "--steps", "2", "--batch-size", "4", "--save-every", "2",
         "--split", "none", "--no-progress"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert load_checkpoint(latest_checkpoint(run)).step == 2
    assert len((run / "metrics.jsonl").read_text().splitlines()) >= 1


def test_generate_cli_writes_joints_texts_and_settings(overfit_run, tmp_path, capsys):
    out = tmp_path / "gen.npz"
    assert main(["generate", "--ckpt", str(overfit_run), "--left", "the left hand makes a fist",
                 "--right", "the right hand opens", "--relation", "the hands stay apart", "--num", "2",
                 "--steps", "5", "--seed", "1", "--out", str(out)]) == 0
    with np.load(out, allow_pickle=False) as data:
        assert data["joints"].shape == (2, 60, 2, 21, 3)
        assert str(data["left"][0]) == "the left hand makes a fist"
        assert json.loads(str(data["settings"]))["steps"] == 5
    assert main(["generate", "--ckpt", str(overfit_run), "--left", "a", "--right", "b", "--relation", "c",
                 "--mode", "inbetween", "--out", str(out)]) == 2


def test_freed_memory_goes_back_to_the_os_between_steps():
    import ctypes.util
    import platform

    from handx.train.memory import release_freed_memory

    assert isinstance(release_freed_memory(), bool)
    if platform.system() == "Linux" and "glibc" in platform.libc_ver()[0] and ctypes.util.find_library("c"):
        assert release_freed_memory()
    with pytest.raises(ValueError, match="trim_every"):
        TrainConfig(data="x", out="y", trim_every=-1)


def test_contact_term_is_trained_and_logged(eight_clips, tmp_path):
    common = dict(data=str(eight_clips), batch_size=4, steps=3, log_every=1, split=None, preset="tiny", warmup=1)
    train_diffusion(TrainConfig(out=str(tmp_path / "with"), contact_loss=1.0, **common), progress=False)
    train_diffusion(TrainConfig(out=str(tmp_path / "without"), **common), progress=False)
    rows = lambda run: [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
                        if "contact" in line]
    with_term, without = rows(tmp_path / "with"), rows(tmp_path / "without")
    assert all(r["contact"] == 0.0 for r in without)
    assert any(r["contact"] > 0 for r in with_term)  # the synthetic clips hold thumb-tip contacts
    first, base = with_term[0], without[0]  # step 1: same weights, data and noise; totals differ by the term
    assert first["step"] == base["step"] == 1
    assert first["total"] == pytest.approx(base["total"] + first["contact"], rel=1e-4)
    assert read_config(tmp_path / "with")["train"]["contact_loss"] == 1.0
    with pytest.raises(ValueError, match="contact_loss"):
        TrainConfig(data=str(eight_clips), out=str(tmp_path / "x"), contact_loss=-1)
