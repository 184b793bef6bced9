"""The `handx data` commands end to end on small inputs."""

import json

import numpy as np
import pytest

from handx.cli.main import main
from handx.io.store import Store

from conftest import release_entry, write_mano, write_release


@pytest.fixture()
def release(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "release"
    folder.mkdir()
    write_release(folder / "train_can_pos_all_wotextfeat.npz", [release_entry(rng) for _ in range(7)])
    write_mano(folder / "train_mano.npz", 7, rng)
    write_release(folder / "test_can_pos_all_wotextfeat.npz", [release_entry(rng, 3) for _ in range(3)])
    return folder


def test_handx_npz_import_export_import_round_trip(release, tmp_path, capsys):
    store = tmp_path / "s"
    assert main(["data", "import", str(release), "--format", "handx-npz", "--out", str(store), "--no-progress"]) == 0
    first = Store(store)
    assert len(first) == 10 and {k: len(v) for k, v in first.splits().items()} == {"test": 3, "train": 7}
    assert first.manifest["shards"][0].get("mano") is not None or first.manifest["shards"][1].get("mano")
    exported = tmp_path / "all.npz"
    assert main(["data", "export", str(store), "--out", str(exported), "--no-progress"]) == 0
    again = tmp_path / "s2"
    assert main(["data", "import", str(exported), "--format", "handx-npz", "--out", str(again), "--no-progress"]) == 0
    second = Store(again)
    assert len(second) == len(first)
    for i in range(len(first)):
        np.testing.assert_array_equal(second.motion(i), first.motion(i))
        assert second.records[i].texts == first.records[i].texts
    # Exporting one split keeps only its clips.
    test_only = tmp_path / "test.npz"
    main(["data", "export", str(store), "--split", "test", "--out", str(test_only), "--no-progress"])
    with np.load(test_only, allow_pickle=True) as loaded:
        assert len(loaded.files) == 3


def test_reimport_resumes_without_duplicates(release, tmp_path):
    store = tmp_path / "s"
    args = ["data", "import", str(release), "--format", "handx-npz", "--out", str(store), "--no-progress"]
    main(args)
    main(args)
    assert len(Store(store)) == 10


def test_batch_import_skips_bad_files_and_strict_fails(release, tmp_path, capsys):
    bad = release / "broken_can_pos_all_wotextfeat.npz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    store = tmp_path / "s"
    assert main(["data", "import", str(release), "--format", "handx-npz", "--out", str(store), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "imported 10 clip(s)" in out and "broken_can_pos_all_wotextfeat.npz" in out
    report = json.loads(next((store / "reports").glob("import-*.json")).read_text())
    assert report["errors"][0]["file"].endswith("broken_can_pos_all_wotextfeat.npz")
    code = main(["data", "import", str(release), "--format", "handx-npz", "--out", str(tmp_path / "t"),
                 "--strict", "--no-progress"])
    assert code == 2 and "broken_can_pos_all_wotextfeat.npz" in capsys.readouterr().err


def test_single_bad_file_fails_naming_it(tmp_path, capsys):
    bad = tmp_path / "one.npz"
    bad.write_bytes(b"not a zip")
    code = main(["data", "import", str(bad), "--format", "handx-npz", "--out", str(tmp_path / "s"), "--no-progress"])
    assert code == 2
    assert "one.npz" in capsys.readouterr().err


def test_missing_path_is_an_error(tmp_path, capsys):
    code = main(["data", "import", str(tmp_path / "nope"), "--format", "bvh", "--out", str(tmp_path / "s")])
    assert code == 2 and "no such file" in capsys.readouterr().err


def test_info_json_reports_counts_sources_and_quality(release, tmp_path, capsys):
    store = tmp_path / "s"
    main(["data", "import", str(release), "--format", "handx-npz", "--out", str(store), "--no-progress"])
    capsys.readouterr()
    assert main(["data", "info", str(store), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["clips"] == 10 and info["hours"] == pytest.approx(10 * 2 / 3600, abs=1e-4)
    assert info["datasets"] == {"handx": 10} and info["annotated_clips"] == 10
    assert info["splits"] == {"train": 7, "test": 3}
    # Random joints are not hands: every clip fails the filter, each with a reason.
    assert info["quality"]["passing"] == 0 and info["quality"]["failing_by_reason"]
    assert main(["data", "info", str(store)]) == 0
    assert "10 clips" in capsys.readouterr().out


def test_filter_reports_every_dropped_clip(release, tmp_path):
    store, kept = tmp_path / "s", tmp_path / "k"
    main(["data", "import", str(release), "--format", "handx-npz", "--out", str(store), "--no-progress"])
    assert main(["data", "filter", str(store), "--out", str(kept), "--no-progress"]) == 0
    report = json.loads(next((kept / "reports").glob("filter-*.json")).read_text())
    assert report["kept"] + report["dropped_count"] == 10
    assert all(d["reasons"] for d in report["dropped"])


def test_help_explains_each_command(capsys):
    for command in ("import", "info", "synth", "filter", "export", "split"):
        with pytest.raises(SystemExit):
            main(["data", command, "--help"])
        assert "usage: handx data " + command in capsys.readouterr().out


def test_real_capture_batch_import_reports_a_broken_take_and_goes_on(shared_data, tmp_path, capsys):
    """Two real ManipNet takes plus a take missing its right hand and a truncated BVH pair."""
    takes = tmp_path / "takes"
    for name in ("cup1", "mug1"):
        (takes / name).mkdir(parents=True)
        for side in ("leftHand.bvh", "rightHand.bvh"):
            (takes / name / side).symlink_to(shared_data / "manipnet" / name / side)
    (takes / "lonely").mkdir()
    (takes / "lonely" / "leftHand.bvh").symlink_to(shared_data / "manipnet" / "cup1" / "leftHand.bvh")
    (takes / "cut").mkdir()
    text = (shared_data / "manipnet" / "teapot2" / "leftHand.bvh").read_text()
    (takes / "cut" / "leftHand.bvh").write_text(text[: len(text) // 2])
    (takes / "cut" / "rightHand.bvh").symlink_to(shared_data / "manipnet" / "teapot2" / "rightHand.bvh")

    store = tmp_path / "s"
    assert main(["data", "import", str(takes), "--format", "bvh", "--out", str(store), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "2 error(s)" in out and "lonely" in out and "cut" in out
    records = Store(store).records
    assert {r.source["sequence"] for r in records} == {"cup1", "mug1"}
    assert all(r.source["license"] == "CC BY-NC 4.0" and r.source["frame_end"] - r.source["frame_start"] == 60
               for r in records)
    # --strict stops at the first broken take; a single broken take given alone fails too.
    assert main(["data", "import", str(takes), "--format", "bvh", "--out", str(tmp_path / "t"), "--strict",
                 "--no-progress"]) == 2
    assert main(["data", "import", str(takes / "cut"), "--format", "bvh", "--out", str(tmp_path / "u"),
                 "--no-progress"]) == 2
    assert "leftHand.bvh" in capsys.readouterr().err


def test_real_capture_imports_into_one_store_with_plausible_windows(shared_data, tmp_path):
    from conftest import assert_plausible_anatomy

    store = tmp_path / "s"
    for folder, fmt in (("manipnet", "bvh"), ("leap", "leap"), ("mediapipe", "mediapipe")):
        assert main(["data", "import", str(shared_data / folder), "--format", fmt, "--out", str(store),
                     "--no-progress"]) == 0
    s = Store(store)
    datasets = {r.source["dataset"] for r in s.records}
    assert {"manipnet", "leap-playback"} <= datasets
    motions = np.stack([s.motion(i) for i in range(len(s))])  # (N, 60, 2, 21, 3)
    np.testing.assert_allclose(motions[:, 0, 1, 0], 0.0, atol=1e-6)  # right wrist at the origin at frame 0
    for i in range(len(s)):
        assert_plausible_anatomy(motions[i], np.ones((60, 2), bool), label=s.records[i].id)
