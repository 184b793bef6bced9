import numpy as np
import pytest

from handx import skeleton


def test_joint_order_matches_chains():
    assert len(skeleton.JOINT_NAMES) == 21
    for finger, chain in skeleton.CHAINS.items():
        assert chain[0] == skeleton.WRIST
        names = [skeleton.JOINT_NAMES[j] for j in chain[1:]]
        assert all(n.startswith(finger) for n in names), names
        assert names[-1] == f"{finger}_tip"


def test_parents_form_a_tree_rooted_at_the_wrist():
    assert skeleton.PARENTS[skeleton.WRIST] == -1
    for j in range(1, 21):
        k, steps = j, 0
        while k != skeleton.WRIST:
            k = skeleton.PARENTS[k]
            steps += 1
            assert steps <= 4
    assert len(skeleton.BONES) == 20 and len(set(map(tuple, skeleton.BONES))) == 20


def test_openpose_permutation_is_a_permutation_and_maps_tips():
    perm = skeleton.OPENPOSE_TO_HANDX
    assert sorted(perm.tolist()) == list(range(21))
    # OpenPose tips are 4, 8, 12, 16, 20 for thumb, index, middle, ring, pinky.
    assert [int(perm[skeleton.TIPS[f]]) for f in skeleton.FINGERS] == [4, 8, 12, 16, 20]


def test_mirror_is_an_involution_and_swaps_hands():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 2, 21, 3)).astype(np.float32)
    m = skeleton.mirror(x)
    np.testing.assert_array_equal(skeleton.mirror(m), x)
    np.testing.assert_array_equal(m[:, 0, :, 0], -x[:, 1, :, 0])
    np.testing.assert_array_equal(m[:, 1, :, 1:], x[:, 0, :, 1:])
    # Mirroring preserves bone lengths hand for hand.
    np.testing.assert_allclose(skeleton.bone_lengths(m[:, 0]), skeleton.bone_lengths(x[:, 1]), rtol=1e-6)


def test_mirror_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"\(\.\.\., 2, 21, 3\)"):
        skeleton.mirror(np.zeros((5, 21, 3)))


def test_hand_length_of_straight_chain():
    hand = np.zeros((21, 3))
    for k, j in enumerate(skeleton.CHAINS["middle"][1:], start=1):
        hand[j] = [0, 0.04 * k, 0]
    assert skeleton.hand_length(hand) == pytest.approx(0.16)
