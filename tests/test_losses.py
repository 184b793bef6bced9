"""Diffusion training losses (handx.train.losses): the optional contact term against an independent computation."""

from __future__ import annotations

import numpy as np
import torch

from handx.features.signals import INTRA_TIP_FINGERS, intra_tip_distances as numpy_intra_tip_distances
from handx.representations.joints168 import encode
from handx.representations.stats import FeatureStats
from handx.synth.corpus import write_synthetic
from handx.io.store import Store
from handx.skeleton import TIPS
from handx.train.losses import LossWeights, contact_loss, diffusion_loss, intra_tip_distances


def _clips(tmp_path, n=12):
    write_synthetic(n, 3, tmp_path / "s", progress=False)
    store = Store(tmp_path / "s")
    return np.stack([store.motion(i) for i in range(n)]).astype(np.float64)  # (N, T, 2, 21, 3)


def test_contact_term_matches_a_numpy_computation_on_decoded_joints(tmp_path):
    clips = _clips(tmp_path)
    features = encode(clips)[0]  # (N, T, 168)
    stats = FeatureStats.fit([features])
    x0 = torch.as_tensor(stats.normalize(features), dtype=torch.float32)
    rng = np.random.default_rng(0)
    moved = clips + rng.normal(0, 0.004, clips.shape)  # another motion: fingertips a few mm off
    x0_hat = torch.as_tensor(stats.normalize(encode(moved)[0]), dtype=torch.float32)
    mean, std = (torch.tensor(np.array(a)) for a in (stats.mean, stats.std))

    true = numpy_intra_tip_distances(np.moveaxis(clips, 2, 1))  # (N, 2, 4, T)
    pred = numpy_intra_tip_distances(np.moveaxis(moved, 2, 1))
    touching = true < 0.02
    assert touching.any(), "the synthetic clips hold thumb-tip contacts"
    scored = touching | (pred < 0.02)
    assert (scored & ~touching).any(), "the moved clips touch where the originals do not"
    expected = (((pred - np.minimum(true, 0.03)) / 0.02)[scored] ** 2).mean()
    got = float(contact_loss(x0, x0_hat, mean, std))
    np.testing.assert_allclose(got, expected, rtol=1e-3)
    assert float(contact_loss(x0, x0, mean, std)) < 1e-6  # a perfect prediction costs nothing

    without = diffusion_loss(x0, x0_hat)
    with_term = diffusion_loss(x0, x0_hat, LossWeights(contact=0.5), (mean, std))
    torch.testing.assert_close(with_term.total, without.total + 0.5 * with_term.contact)
    assert float(without.contact) == 0.0


def test_contact_term_pulls_a_prediction_towards_the_true_distance(tmp_path):
    clips = _clips(tmp_path, 4)
    features = encode(clips)[0]
    stats = FeatureStats.fit([features])
    x0 = torch.as_tensor(stats.normalize(features), dtype=torch.float32)
    mean, std = (torch.tensor(np.array(a)) for a in (stats.mean, stats.std))
    x0_hat = (x0 + 0.3 * torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))).requires_grad_()
    optimizer = torch.optim.Adam([x0_hat], lr=0.01)
    first = float(contact_loss(x0, x0_hat, mean, std).detach())
    for _ in range(200):
        optimizer.zero_grad()
        contact_loss(x0, x0_hat, mean, std).backward()
        optimizer.step()
    assert float(contact_loss(x0, x0_hat, mean, std).detach()) < 0.1 * first


def test_contact_term_pushes_apart_a_contact_the_truth_does_not_hold(tmp_path):
    clips = _clips(tmp_path, 4)
    features = encode(clips)[0]
    stats = FeatureStats.fit([features])
    mean, std = (torch.tensor(np.array(a)) for a in (stats.mean, stats.std))
    true = numpy_intra_tip_distances(np.moveaxis(clips, 2, 1))  # (N, 2, 4, T)
    n, h, f, t = np.argwhere(true > 0.05)[0]  # a thumb-tip pair well apart in the truth
    joint = TIPS[INTRA_TIP_FINGERS[f]]
    touched = clips.copy()
    touched[n, t, h, joint] = touched[n, t, h, TIPS["thumb"]] + [0.005, 0, 0]  # the prediction puts that tip on the thumb
    x0 = torch.as_tensor(stats.normalize(features), dtype=torch.float32)
    x0_hat = torch.as_tensor(stats.normalize(encode(touched)[0]), dtype=torch.float32).requires_grad_()
    loss = contact_loss(x0, x0_hat, mean, std)
    expected = ((0.005 - 0.03) / 0.02) ** 2 / ((true < 0.02).sum() + 1)  # one more entry in contact, capped at 3 cm
    np.testing.assert_allclose(float(loss.detach()), expected, rtol=1e-2)
    loss.backward()
    before = intra_tip_distances(x0_hat.detach(), mean, std)[n, t, h, f]
    after = intra_tip_distances(x0_hat.detach() - 0.01 * x0_hat.grad, mean, std)[n, t, h, f]
    assert 0.004 < float(before) < 0.006 and float(after) > float(before)  # a gradient step moves the tips apart
