"""Clips for viewing and export from every source handx knows, with errors that name the file and the clip."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from handx.errors import HandxInputError
from handx.io.handx_npz import HandxNpzWriter, motion_entry
from handx.io.sources import load_clips
from handx.io.store import Store
from handx.motion import Texts
from handx.synth.corpus import write_synthetic


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("sources") / "store"
    write_synthetic(4, 0, root, progress=False)
    return root


def test_every_source_gives_the_same_motion(store, tmp_path):
    s = Store(store)
    motions = np.stack([s.motion(i) for i in range(4)])
    clips = load_clips(store)
    assert [c.id for c in clips] == [r.id for r in s.records]
    np.testing.assert_array_equal(np.stack([c.motion for c in clips]), motions)
    assert clips[1].texts.left == tuple(s.records[1].texts["left"])
    picked = load_clips(store, [s.records[2].id, s.records[0].id])
    assert [c.id for c in picked] == [s.records[2].id, s.records[0].id]

    np.savez(tmp_path / "gen.npz", joints=motions[:2], left=np.array(["l"]), right=np.array(["r"]),
             two_hands_relation=np.array(["x"]), settings=np.array(json.dumps({"seed": 3})))
    gen = load_clips(tmp_path / "gen.npz")
    assert [c.id for c in gen] == ["gen/0", "gen/1"] and gen[1].texts.right == ("r",)
    assert gen[0].extra["settings"] == {"seed": 3}
    np.testing.assert_array_equal(gen[1].motion, motions[1])

    np.savez(tmp_path / "evalgen.npz", ids=np.array(["a", "b"]), joints=motions[:2, None].repeat(2, axis=1))
    assert [c.id for c in load_clips(tmp_path / "evalgen.npz")] == ["a/g0", "a/g1", "b/g0", "b/g1"]

    with HandxNpzWriter(tmp_path / "test_can_pos_all_wotextfeat.npz") as writer:
        for m in motions:
            writer.add(motion_entry(m, Texts(("a",), ("b",), ("c",))))
    release = load_clips(tmp_path / "test_can_pos_all_wotextfeat.npz", ["3"])
    assert release[0].id == "3" and release[0].texts.left == ("a",)
    np.testing.assert_array_equal(release[0].motion, motions[3])

    np.save(tmp_path / "one.npy", motions[0])
    assert load_clips(tmp_path / "one.npy")[0].id == "one"


def test_bad_sources_are_named(store, tmp_path):
    with pytest.raises(HandxInputError, match="no clip with id 'nope'"):
        load_clips(store, ["nope"])
    bad = np.zeros((60, 2, 21, 3), np.float32) + 0.1
    bad[5, 0, 3] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(HandxInputError, match="nan.npy"):
        load_clips(tmp_path / "nan.npy")
    np.savez(tmp_path / "other.npz", pose=np.zeros(3))
    with pytest.raises(HandxInputError, match="no 'joints' or 'motion'"):
        load_clips(tmp_path / "other.npz")
    (tmp_path / "trunc.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(HandxInputError, match="trunc.npz"):
        load_clips(tmp_path / "trunc.npz")
    with pytest.raises(HandxInputError, match="no such file"):
        load_clips(tmp_path / "missing.npz")
    np.savez(tmp_path / "ids.npz", joints=np.zeros((2, 60, 2, 21, 3)) + 0.1)
    with pytest.raises(HandxInputError, match="no clip with id 'ids/7'"):
        load_clips(tmp_path / "ids.npz", ["ids/7"])


def _npy_header(shape, descr="<f4") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def test_huge_declared_arrays_are_refused_before_allocating(tmp_path):
    """A 100-byte file whose header declares 10^13 clips: refused from the header, not a MemoryError."""
    header = _npy_header((10**13, 60, 2, 21, 3))
    (tmp_path / "huge.npy").write_bytes(header + bytes(64))
    with pytest.raises(HandxInputError, match=r"huge.npy: header declares .* only 64 bytes follow"):
        load_clips(tmp_path / "huge.npy")
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as archive:
        archive.writestr("joints.npy", header + bytes(64))
    with pytest.raises(HandxInputError, match=r"huge.npz: key 'joints': header declares"):
        load_clips(tmp_path / "huge.npz")


def test_inflating_member_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("joints.npy", _npy_header((40, 60, 2, 21, 3)) + bytes(40 * 60 * 2 * 21 * 3 * 4))
    with pytest.raises(HandxInputError, match="bomb.npz: key 'joints': .*zip bomb"):
        load_clips(tmp_path / "bomb.npz")


def test_value_too_large_for_float32_is_refused(tmp_path):
    clip = np.full((60, 2, 21, 3), 0.1)
    clip[4, 1, 2, 0] = 1e300
    np.save(tmp_path / "big.npy", clip)
    with pytest.raises(HandxInputError, match="big.npy: big: motion holds a value .*too large for float32"):
        load_clips(tmp_path / "big.npy")
