"""Benchmark metrics (handx.eval.metrics): independent formulas, hand-built rankings and known contacts."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from handx import skeleton
from handx.eval.metrics import (
    PRF,
    clip_contact_labels,
    contact_prf,
    diversity,
    fid,
    matching_score,
    mpjpe,
    multimodality,
    r_precision,
)
from handx.features.contacts import LABEL_NAMES

from hand_builders import apart, manipnet_windows, open_hand

# ----------------------------------------------------------------------------------------------------------------
# FID


def fid_scipy(a: np.ndarray, b: np.ndarray) -> float:
    """The reference's formula with scipy's matrix square root of Σ₁Σ₂."""
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.square(a.mean(0) - b.mean(0)).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_fid_agrees_with_scipy_sqrtm():
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(8, 8))
    a = rng.normal(size=(200, 8)) @ mix
    b = rng.normal(size=(200, 8)) @ rng.normal(size=(8, 8)) + 0.5
    assert fid(a, b) == pytest.approx(fid_scipy(a, b), rel=1e-6)
    assert fid(b, a) == pytest.approx(fid(a, b), rel=1e-6)


def test_fid_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(1).normal(size=(200, 8))
    assert fid(x, x) == pytest.approx(0.0, abs=1e-9)
    # rank-deficient covariance (N < D) still gives 0, not a negative or complex number
    y = np.random.default_rng(2).normal(size=(5, 8))
    assert fid(y, y) == pytest.approx(0.0, abs=1e-9)


def test_fid_of_a_mean_shift_is_the_squared_shift():
    x = np.random.default_rng(3).normal(size=(200, 8))
    shift = np.array([0.3, -1.0, 0.0, 2.0, 0.0, 0.0, 0.5, 0.0])
    assert fid(x, x + shift) == pytest.approx(np.square(shift).sum(), rel=1e-9)
    assert fid(x, x + 2 * shift) > fid(x, x + shift)


def test_fid_rejects_bad_input():
    x = np.zeros((10, 4))
    with pytest.raises(ValueError, match="generated"):
        fid(x, np.zeros((10, 5)))
    with pytest.raises(ValueError, match="real"):
        fid(np.zeros(10), x)
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fid(x, bad)


# ----------------------------------------------------------------------------------------------------------------
# R-precision and matching score


def ranked_pool(ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Text/motion embeddings of one pool in which exactly ``ranks[i]`` motions are closer to text i than its own.

    Motion j is c_j·e_j with c_j = j + 1; text i is x_i·e_i. For j ≠ i, ‖t_i − m_j‖² = x_i² + c_j² and
    ‖t_i − m_i‖² = (x_i − c_i)², so m_j is closer iff c_j² < c_i² − 2x_i c_i =: τ_i. Choosing τ_i between the
    squared c of the r-th and (r+1)-th other motions sets the rank to r.
    """
    n = len(ranks)
    c = np.arange(1.0, n + 1)
    text, motion = np.zeros((n, n)), np.diag(c)
    for i, r in enumerate(ranks):
        others = np.sort(np.delete(c, i) ** 2)
        low = others[r - 1] if r > 0 else 0.0
        high = others[r] if r < n - 1 else others[-1] + 2.0
        tau = 0.5 * (low + high)
        text[i, i] = (c[i] ** 2 - tau) / (2 * c[i])
    return text, motion


def brute_ranks(text: np.ndarray, motion: np.ndarray) -> np.ndarray:
    ranks = []
    for i, t in enumerate(text):
        d = np.linalg.norm(motion - t, axis=1)  # one computation, so the own distance compares equal to itself
        ranks.append((d < d[i]).sum())
    return np.array(ranks)


def test_ranked_pool_construction_has_the_ranks_it_promises():
    ranks = np.random.default_rng(4).integers(0, 32, size=32)
    np.testing.assert_array_equal(brute_ranks(*ranked_pool(ranks)), ranks)


def test_r_precision_of_known_ranks():
    ranks = np.random.default_rng(5).integers(0, 32, size=32)
    text, motion = ranked_pool(ranks)
    expected = [(ranks < k).mean() for k in (1, 2, 3, 10)]
    np.testing.assert_allclose(r_precision(text, motion, top_k=10)[[0, 1, 2, 9]], expected)


def test_r_precision_ranks_the_remainder_among_a_full_pool():
    # Every other motion is closer to each text than its own (‖t_i − m_i‖ = 20, ‖t_i − m_j‖ = √200), so an item's
    # rank is the size of its pool minus one: 31 for all 70 items only if the last 6 also meet 32 candidates.
    n = 70
    text, motion = 10 * np.eye(n), -10 * np.eye(n)
    hits = r_precision(text, motion, pool=32, top_k=32)
    np.testing.assert_array_equal(hits, [0.0] * 31 + [1.0])
    # fewer items than a pool: one pool of all of them
    hits = r_precision(text[:20], motion[:20], pool=32, top_k=20)
    np.testing.assert_array_equal(hits, [0.0] * 19 + [1.0])


def test_r_precision_scores_each_item_once_with_the_remainder():
    # Pools of the order: [0..31], [32..63], and the remainder 64..69 ranked against items 38..69. Give only the
    # remainder perfect pairs and everything else rank 31: top-1 is then exactly 6 / 70.
    n = 70
    text, motion = 10 * np.eye(n), -10 * np.eye(n)
    motion[64:] = text[64:]
    assert r_precision(text, motion, pool=32, top_k=1)[0] == pytest.approx(6 / 70)


def test_r_precision_of_a_perfect_match_is_one_in_any_order():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(70, 16))
    for order in (None, rng.permutation(70), rng.permutation(70)):
        np.testing.assert_array_equal(r_precision(x, x, order=order), [1.0, 1.0, 1.0])


def test_r_precision_agrees_with_a_loop_over_pools_in_a_given_order():
    rng = np.random.default_rng(7)
    text, motion = rng.normal(size=(100, 6)), rng.normal(size=(100, 6))
    order = rng.permutation(100)
    ranks = np.empty(100, dtype=int)
    for lo in range(0, 96, 32):
        items = order[lo:lo + 32]
        ranks[items] = brute_ranks(text[items], motion[items])
    items = order[-32:]
    ranks[items[-4:]] = brute_ranks(text[items], motion[items])[-4:]
    np.testing.assert_allclose(r_precision(text, motion, order=order, top_k=5),
                               [(ranks < k).mean() for k in range(1, 6)])


def test_r_precision_of_random_embeddings_is_chance():
    rng = np.random.default_rng(8)
    text, motion = rng.normal(size=(3200, 16)), rng.normal(size=(3200, 16))
    np.testing.assert_allclose(r_precision(text, motion), np.arange(1, 4) / 32, atol=0.015)


def test_r_precision_rejects_bad_input():
    x = np.zeros((10, 4))
    with pytest.raises(ValueError, match="motion"):
        r_precision(x, np.zeros((9, 4)))
    with pytest.raises(ValueError, match="permutation"):
        r_precision(x, x, order=np.zeros(10, dtype=int))


def test_matching_score_by_hand():
    text = np.array([[0.0, 0.0], [1.0, 1.0]])
    motion = np.array([[3.0, 4.0], [1.0, 2.0]])
    assert matching_score(text, motion) == pytest.approx((5.0 + 1.0) / 2)


# ----------------------------------------------------------------------------------------------------------------
# Diversity and multimodality


def test_diversity_on_a_simplex_is_the_edge_length_and_never_pairs_an_item_with_itself():
    # All pairwise distances of c·e_i are c√2: any self pair would pull the mean below it.
    for n in (2, 3, 50, 400):
        x = 0.7 * np.eye(n)
        for seed in range(3):
            assert diversity(x, rng=np.random.default_rng(seed)) == pytest.approx(0.7 * np.sqrt(2))


def test_diversity_is_deterministic_given_the_rng_and_reasonable_on_gaussians():
    x = np.random.default_rng(9).normal(size=(1000, 32))
    a = diversity(x, rng=np.random.default_rng(42))
    assert a == diversity(x, rng=np.random.default_rng(42))
    assert a == pytest.approx(np.sqrt(2 * 32), rel=0.05)  # E‖x − y‖ for independent N(0, I₃₂)


def test_diversity_needs_two_items():
    with pytest.raises(ValueError, match="N >= 2"):
        diversity(np.zeros((1, 4)), rng=np.random.default_rng(0))


def test_multimodality_pairs_only_different_generations():
    rng = np.random.default_rng(10)
    same = np.repeat(rng.normal(size=(5, 1, 8)), 4, axis=1)  # (N, G, D) four identical generations
    assert multimodality(same, rng=rng) == 0.0
    two = np.stack([np.zeros((6, 3)), np.tile([3.0, 4.0, 0.0], (6, 1))], axis=1)  # (6, 2, 3)
    assert multimodality(two, rng=rng) == pytest.approx(5.0)
    simplex = np.tile(np.eye(4)[None], (7, 1, 1))  # (7, 4, 4): generations at distance √2 from each other
    assert multimodality(simplex, rng=rng) == pytest.approx(np.sqrt(2))
    assert np.isnan(multimodality(np.zeros((3, 1, 8)), rng=rng))


# ----------------------------------------------------------------------------------------------------------------
# MPJPE


def test_mpjpe_is_zero_for_identical_clips_and_ignores_per_frame_translation():
    rng = np.random.default_rng(11)
    truth = rng.normal(scale=0.1, size=(3, 10, 2, 21, 3))
    assert mpjpe(truth, truth) == 0.0
    generated = truth + rng.normal(scale=0.01, size=truth.shape)
    shift = rng.normal(size=(3, 10, 1, 1, 3))  # one translation per frame, moving both hands
    assert mpjpe(truth + shift, generated) == pytest.approx(mpjpe(truth, generated))
    assert mpjpe(truth, generated + shift) == pytest.approx(mpjpe(truth, generated))


def test_mpjpe_of_one_hand_moved_by_a_centimetre():
    truth = np.random.default_rng(12).normal(scale=0.1, size=(2, 5, 2, 21, 3))
    for hand in (skeleton.LEFT, skeleton.RIGHT):
        generated = truth.copy()
        generated[:, :, hand] += [0.0, 0.01, 0.0]
        # centred on the left wrist, the right hand's 21 joints are 10 mm off and the left's 0: 21 · 10 / 42
        assert mpjpe(truth, generated) == pytest.approx(5.0)


def test_mpjpe_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="generated"):
        mpjpe(np.zeros((2, 5, 2, 21, 3)), np.zeros((2, 6, 2, 21, 3)))


# ----------------------------------------------------------------------------------------------------------------
# Contacts


def column(name: str) -> int:
    return LABEL_NAMES.index(name)


def test_clip_labels_of_a_pinch_and_a_tip_on_the_palm():
    clip = apart(20)
    palm_centre = clip[0, 0, skeleton.PALM_TRIANGLES].reshape(-1, 3).mean(0)
    clip[5:9, 1, skeleton.TIPS["index"]] = palm_centre + [0.0, 0.0, 0.01]  # right index tip on the left palm
    left = clip[:, 0]
    left[10:13, skeleton.TIPS["thumb"]] = left[10:13, skeleton.TIPS["index"]] + [0.005, 0.0, 0.0]  # left pinch
    labels = clip_contact_labels(clip)
    assert labels.intra.shape == (1, 8) and labels.inter.shape == (1, 10)
    expected = np.zeros(18, dtype=bool)
    expected[column("left index tip - thumb tip")] = True
    expected[column("right index tip - left palm")] = True
    np.testing.assert_array_equal(labels.all()[0], expected)
    # min_duration: the palm contact lasts 4 frames, the pinch 3
    np.testing.assert_array_equal(clip_contact_labels(clip, min_duration=4).all()[0],
                                  np.arange(18) == column("right index tip - left palm"))
    assert not clip_contact_labels(clip, min_duration=5).all().any()


def test_min_duration_needs_consecutive_frames():
    clip = apart(30)
    left = clip[:, 0]
    for start in (2, 8, 14):  # three separate 3-frame pinches: 9 contact frames, never 4 in a row
        left[start:start + 3, skeleton.TIPS["thumb"]] = left[start:start + 3, skeleton.TIPS["index"]]
    batch = np.stack([clip, apart(30)])  # (2, T, 2, 21, 3): the second clip has no contact
    assert clip_contact_labels(batch, min_duration=3).intra.tolist() == [
        [True] + [False] * 7, [False] * 8]
    assert not clip_contact_labels(batch, min_duration=4).intra.any()


def test_prf_by_hand():
    truth = np.array([[1, 1, 0, 0], [1, 0, 0, 1]], dtype=bool)
    predicted = np.array([[1, 0, 1, 0], [1, 0, 0, 0]], dtype=bool)
    result = contact_prf(truth, predicted)  # TP 2, FP 1, FN 2
    assert (result.tp, result.fp, result.fn) == (2, 1, 2)
    assert result.precision == pytest.approx(2 / 3)
    assert result.recall == pytest.approx(1 / 2)
    assert result.f1 == pytest.approx(2 * (2 / 3) * (1 / 2) / (2 / 3 + 1 / 2))
    assert contact_prf(truth, truth) == PRF(1.0, 1.0, 1.0, 4, 0, 0)


def test_prf_zero_over_zero_conventions():
    none = np.zeros((3, 5), dtype=bool)
    some = none.copy()
    some[1, 2] = True
    assert contact_prf(none, none) == PRF(1.0, 1.0, 1.0, 0, 0, 0)  # nothing to find, nothing claimed
    assert contact_prf(some, none) == PRF(1.0, 0.0, 0.0, 0, 0, 1)  # no claims: precision 1, recall 0
    assert contact_prf(none, some) == PRF(0.0, 1.0, 0.0, 0, 1, 0)  # nothing to miss: recall 1
    assert contact_prf(some, ~some).f1 == 0.0  # P = R = 0


def test_prf_rejects_non_boolean_labels():
    with pytest.raises(ValueError, match="predicted"):
        contact_prf(np.zeros((2, 3), dtype=bool), np.full((2, 3), 0.5))


# ----------------------------------------------------------------------------------------------------------------
# Real capture


@pytest.fixture(scope="module")
def real_windows(shared_data) -> np.ndarray:
    return manipnet_windows(shared_data, "cup1")


def test_ground_truth_against_itself(real_windows):
    assert mpjpe(real_windows, real_windows) == 0.0
    labels = clip_contact_labels(real_windows)
    for truth in (labels.intra, labels.inter, labels.all()):
        assert contact_prf(truth, truth).f1 == 1.0
    # the same clips with every joint 5 mm off along x in the right hand only: 2.5 mm
    moved = real_windows.copy()
    moved[:, :, 1] += [0.005, 0.0, 0.0]
    assert mpjpe(real_windows, moved) == pytest.approx(2.5, rel=1e-4)
