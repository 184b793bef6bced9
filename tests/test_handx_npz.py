"""The HandX release reader: restricted unpickling, layout checks, bad input and the export round trip."""

import io
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

from handx.errors import HandxInputError, UnsafePickleError
from handx.io import handx_npz
from handx.io.safe_pickle import iter_npz, load_pickle_bytes

from conftest import release_entry, write_mano, write_release


class Evil:
    def __reduce__(self):
        return (os.getcwd, ())


def test_reads_release_layout_with_texts_and_mano(tmp_path):
    rng = np.random.default_rng(0)
    entries = [release_entry(rng) for _ in range(4)]
    path = tmp_path / "train_can_pos_all_wotextfeat.npz"
    write_release(path, entries)
    write_mano(tmp_path / "train_mano.npz", 4, rng)
    items = list(handx_npz.read_handx_npz(path))
    assert [i.key for i in items] == ["0", "1", "2", "3"]
    for item, entry in zip(items, entries):
        np.testing.assert_array_equal(item.motion, entry["motion"].astype(np.float32))
        assert list(item.texts.left) == entry["left_annotation"]
        assert list(item.texts.two_hands_relation) == entry["interaction_annotation"]
        assert item.mano["left_pose"].shape == (60, 48)
    assert handx_npz.split_of(path) == "train"


def test_restricted_unpickler_refuses_other_objects(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, **{"0": np.array({"motion": Evil()}, dtype=object)})
    with pytest.raises(UnsafePickleError, match=r"posix\.getcwd|os\.getcwd") as info:
        list(handx_npz.read_handx_npz(path))
    assert "evil.npz" in str(info.value) and "key '0'" in str(info.value)
    with pytest.raises(UnsafePickleError):
        load_pickle_bytes(pickle.dumps(Evil()))


def test_restricted_unpickler_accepts_plain_data():
    data = {"a": [1, 2.5, "x", (3, None)], "b": np.arange(6, dtype=np.float32).reshape(2, 3), "c": np.float64(2)}
    out = load_pickle_bytes(pickle.dumps(data, protocol=3))
    np.testing.assert_array_equal(out["b"], data["b"])
    assert out["a"] == data["a"] and out["c"] == 2


def test_truncated_npz_names_the_file(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "test_can_pos_all_wotextfeat.npz"
    write_release(path, [release_entry(rng) for _ in range(3)])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(HandxInputError, match="test_can_pos_all_wotextfeat.npz"):
        list(handx_npz.read_handx_npz(path))


def test_bad_entries_are_reported_not_raised(tmp_path):
    rng = np.random.default_rng(2)
    good = release_entry(rng)
    nan = release_entry(rng)
    nan["motion"][10, 0, 3] = np.nan
    wrong = release_entry(rng)
    wrong["motion"] = wrong["motion"][:, :, :20]
    uneven = release_entry(rng)
    uneven["right_annotation"] = uneven["right_annotation"][:3]
    path = tmp_path / "x.npz"
    write_release(path, [good, nan, wrong, uneven, "not a dict"])
    items = list(handx_npz.read_handx_npz(path))
    assert not isinstance(items[0], HandxInputError)
    problems = [str(i) for i in items[1:]]
    assert all(isinstance(i, HandxInputError) for i in items[1:])
    assert "key '1'" in problems[0] and "non-finite" in problems[0]
    assert "key '2'" in problems[1] and "shape" in problems[1]
    assert "key '3'" in problems[2] and "equal numbers" in problems[2]
    assert "key '4'" in problems[3] and "dict" in problems[3]


def test_writer_output_reads_back_with_numpy_and_with_us(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "out.npz"
    entries = [release_entry(rng) for _ in range(3)]
    with handx_npz.HandxNpzWriter(path) as writer:
        for e in entries:
            writer.add(e)
    # The public code loads these files with numpy's own pickle support.
    with np.load(path, allow_pickle=True) as loaded:
        assert sorted(loaded.files, key=int) == ["0", "1", "2"]
        np.testing.assert_array_equal(loaded["1"].item()["motion"], entries[1]["motion"])
    ours = dict(iter_npz(str(path)))
    assert ours["2"]["left_annotation"] == entries[2]["left_annotation"]


def test_writer_leaves_no_file_when_interrupted(tmp_path):
    path = tmp_path / "out.npz"
    with pytest.raises(RuntimeError):
        with handx_npz.HandxNpzWriter(path) as writer:
            writer.add(release_entry(np.random.default_rng(4)))
            raise RuntimeError("interrupted")
    assert not path.exists() and not list(tmp_path.iterdir())


def test_not_an_npz(tmp_path):
    path = tmp_path / "bad.npz"
    path.write_bytes(b"hello")
    with pytest.raises(HandxInputError, match="bad.npz.*not a readable .npz"):
        list(handx_npz.read_handx_npz(path))


# ---------------------------------------------------------------- hostile files

def _npy(value) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(value), allow_pickle=True)
    return buffer.getvalue()


def _entry_npy(entry) -> bytes:
    holder = np.empty((), dtype=object)
    holder[()] = entry
    return _npy(holder)


def _release_with(path, middle: bytes | None = None, *, bomb_bytes: int = 0):
    """A release file of three keys whose middle member is ``middle`` (raw .npy bytes) or, with ``bomb_bytes``,
    that many zeros behind a float64 header, deflated."""
    rng = np.random.default_rng(5)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("0.npy", _entry_npy(release_entry(rng)))
        if bomb_bytes:
            with archive.open("1.npy", "w", force_zip64=True) as member:
                member.write(_npy_header((bomb_bytes // 8,), "<f8"))
                chunk = bytes(2**22)
                for _ in range(bomb_bytes // len(chunk)):
                    member.write(chunk)
        else:
            archive.writestr("1.npy", middle)
        archive.writestr("2.npy", _entry_npy(release_entry(rng)))
    return path


def _npy_header(shape, descr) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def _keys_and_problems(path):
    items = list(handx_npz.read_handx_npz(path))
    return [i.key if isinstance(i, handx_npz.HandxItem) else i.problem for i in items], items


def test_value_too_large_for_float32_refuses_that_key_and_the_rest_is_read(tmp_path):
    rng = np.random.default_rng(6)
    entries = [release_entry(rng) for _ in range(3)]
    entries[1]["motion"][3, 0, 5, 1] = -3e39  # float32 tops out at 3.4e38
    write_release(tmp_path / "x.npz", entries)
    items = list(handx_npz.read_handx_npz(tmp_path / "x.npz"))
    assert [i.key for i in items if not isinstance(i, HandxInputError)] == ["0", "2"]
    assert items[1].item == "key '1'" and "too large for float32" in items[1].problem and "3e+39" in items[1].problem


def test_zip_bomb_member_is_refused_before_inflating(tmp_path):
    path = _release_with(tmp_path / "bomb.npz", bomb_bytes=200 * 2**20)
    assert path.stat().st_size < 400_000  # about 200 kB on disk, 200 MB inflated
    problems, items = _keys_and_problems(path)
    assert problems[0] == "0" and problems[2] == "2"
    assert items[1].item == "key '1'" and "more than the 16777216 accepted" in problems[1]


def test_small_member_with_absurd_inflation_is_a_zip_bomb(tmp_path):
    """Under the size limit but 1000× deflated: not what a clip looks like."""
    path = _release_with(tmp_path / "ratio.npz", bomb_bytes=12 * 2**20)
    assert "zip bomb" in _keys_and_problems(path)[0][1]


def test_npy_header_declaring_a_huge_array_is_refused(tmp_path):
    path = _release_with(tmp_path / "huge.npz", _npy_header((10**12,), "<f8") + bytes(64))
    problems, items = _keys_and_problems(path)
    assert problems[0] == "0" and problems[2] == "2" and items[1].item == "key '1'"
    assert "8000000000000 bytes" in problems[1] and "only 64 bytes follow" in problems[1]


def test_pickle_naming_a_far_memo_slot_is_refused(tmp_path):
    """Ten bytes of pickle (LONG_BINPUT 2^24) would make the unpickler build a 128 MB memo table."""
    bomb = b"\x80\x02N" + b"r" + struct.pack("<I", 2**24) + b"."
    path = _release_with(tmp_path / "memo.npz", _npy_header((), "|O") + bomb)
    problems, items = _keys_and_problems(path)
    assert problems[0] == "0" and problems[2] == "2" and items[1].item == "key '1'"
    assert "memo slot 16777216" in problems[1]
    with pytest.raises(HandxInputError, match="memo slot"):
        load_pickle_bytes(bomb)
