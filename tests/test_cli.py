"""The `handx data` commands end to end on small inputs."""

import json
import os
import subprocess
import sys

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


# ---------------------------------------------------------------------------------------------------------------
# Wrong uses: one line "handx: error: ...", exit 2 for usage errors and 1 for failures, the traceback with -v
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    """Six synthetic clips (with texts), split 4 train / 2 test."""
    from handx.synth.corpus import write_synthetic

    root = tmp_path_factory.mktemp("wrong-uses") / "s"
    write_synthetic(6, 0, root, progress=False)
    assert main(["data", "split", str(root), "--test", "0.34", "--by", "clip"]) == 0
    return root


def run_cli(argv, capsys) -> tuple[int, str]:
    """``handx argv`` in this process: ``(exit status, stderr)``; argparse's own exits count as statuses."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def wrong_uses(store, tmp):
    """``(argv, exit status, words the one error line must hold)`` for commands that must fail cleanly."""
    clip = tmp / "clip.npy"
    np.save(clip, Store(store).motion(0))
    generate = ["generate", "--left", "a", "--right", "b", "--relation", "c", "--out", tmp / "g.npz"]
    cases = [
        (["train", "diffusion", "--data", store, "--out", tmp / "r", "--steps", "0"], 2, "--steps must be >= 1"),
        (["train", "diffusion", "--data", store, "--out", tmp / "r", "--preset", "huge"], 2, "preset 'huge'"),
        (["train", "diffusion", "--data", store, "--out", tmp / "r", "--text-encoder", "bogus"], 2,
         "--text-encoder"),
        (["train", "diffusion", "--data", store, "--out", tmp / "r", "--device", "tpu9"], 2, "--device"),
        (["train", "evaluator", "--data", store, "--out", tmp / "r", "--steps", "0"], 2, "--steps must be >= 1"),
        (["eval", "--data", store, "--out", tmp / "e", "--evaluator", tmp / "no-run"], 2, "no-run"),
        (["data", "export", store, "--split", "nosuch", "--out", tmp / "x.npz"], 2, "no split 'nosuch'"),
        (["data", "export", store, "--out", store], 1, "is a directory"),
        (["data", "export", store, "--out", store / "manifest.json" / "x.npz"], 1, "manifest.json"),
        (["data", "filter", store, "--out", store], 2, "is the input store"),
        (["data", "split", store, "--test", "0.7", "--val", "0.6"], 2, "--test + --val must not exceed 1"),
        (["data", "split", store, "--test", "-0.5"], 2, "--test"),
        (["data", "synth", "--n", "-1", "--out", tmp / "s2"], 2, "--n"),
        (["data", "info", tmp / "missing"], 2, "missing"),
        (["data", "import", tmp / "missing", "--format", "bvh", "--out", tmp / "s3"], 2, "no such file"),
        (["codes", "--clip", store / "manifest.json"], 2, "expected a .npy or .npz file"),
        (generate + ["--steps", "0"], 2, "steps must be >= 1"),
        (generate + ["--condition", clip, "--mode", "keyframes", "--frames", "a,b"], 2, "--frames"),
        (generate + ["--condition", store / "manifest.json", "--mode", "wrists"], 2, "expected a .npy or .npz"),
        (["render", store, "--out", tmp / "x.avi"], 2, "unknown output type"),
        (["view", tmp / "missing", "--port", "0"], 2, "no such file or directory"),
        (["export", store, "--format", "json", "--out", store / "manifest.json"], 2, "must be a folder"),
    ]
    if sys.platform.startswith("linux"):  # a place nobody can create files in, even root
        cases.append((["data", "export", store, "--out", "/proc/handx-x.npz"], 1, "/proc"))
    if os.geteuid() != 0:  # root writes into read-only folders
        read_only = tmp / "read-only"
        read_only.mkdir()
        read_only.chmod(0o555)
        cases.append((["data", "export", store, "--out", read_only / "x.npz"], 1, "read-only"))
    return cases


def test_wrong_uses_end_in_one_error_line_with_the_right_status(small_store, tmp_path, capsys):
    cases = wrong_uses(small_store, tmp_path)
    assert len(cases) >= 15
    for argv, status, words in cases:
        code, err = run_cli(argv, capsys)
        shown = " ".join(map(str, argv))
        assert code == status, (shown, code, err)
        assert "Traceback" not in err, (shown, err)
        last = err.strip().splitlines()[-1]
        assert last.startswith("handx") and ": error: " in last and words in last, (shown, err)
        assert ": error: \"" not in last and ": error: '" not in last, (shown, last)  # no KeyError repr quotes


def test_verbose_shows_the_traceback_before_the_error_line(small_store, tmp_path, capsys):
    for argv in (["-v", "data", "export", str(small_store), "--split", "nosuch", "--out", str(tmp_path / "x.npz")],
                 ["data", "export", str(small_store), "--split", "nosuch", "--out", str(tmp_path / "x.npz"), "-v"]):
        code, err = run_cli(argv, capsys)
        assert code == 2 and "Traceback (most recent call last)" in err and "KeyError" in err
        last = err.strip().splitlines()[-1]
        assert last == f"handx: error: {small_store}: no split 'nosuch' (known: ['test', 'train'])"


def test_an_unexpected_error_is_one_line_that_asks_for_the_traceback(tmp_path, capsys, monkeypatch):
    from handx.cli import models

    def broken(args):
        raise TypeError("something inside handx is wrong")

    monkeypatch.setattr(models, "_models", broken)
    code, err = run_cli(["models"], capsys)
    assert code == 1 and "Traceback" not in err
    assert err.strip() == ("handx: error: unexpected TypeError: something inside handx is wrong (a bug in handx; "
                           "run it again with -v for the traceback and report it)")
    code, err = run_cli(["models", "-v"], capsys)
    assert code == 1 and "Traceback" in err and "TypeError: something inside handx is wrong" in err


def test_the_installed_command_prints_no_traceback(small_store, tmp_path):
    result = subprocess.run([sys.executable, "-m", "handx.cli.main", "data", "export", str(small_store), "--out",
                             str(small_store)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"handx: error: {small_store}: is a directory; give a file name"


def test_filter_refuses_to_write_into_its_input(small_store, tmp_path, capsys, monkeypatch):
    link = tmp_path / "link"
    link.symlink_to(small_store)
    monkeypatch.chdir(small_store.parent)
    before = sorted(p.name for p in small_store.iterdir())
    for out in (small_store, link, "s", f"../{small_store.parent.name}/s", "./s/"):
        code, err = run_cli(["data", "filter", str(small_store), "--out", str(out), "--no-progress"], capsys)
        assert code == 2 and "is the input store" in err, (out, err)
    assert sorted(p.name for p in small_store.iterdir()) == before  # nothing written, not even a report
    assert main(["data", "filter", "s", "--out", str(tmp_path / "kept"), "--no-progress"]) == 0


def test_generate_saves_the_take_the_pipeline_gives_with_how_it_was_made(tmp_path, capsys):
    """``handx generate`` is the library's take (several samples of a two-segment take here), saved with its
    texts and settings; a setting not given takes the family's default."""
    from handx.motion import Triplet
    from handx.pipelines import load_pipeline, make_settings

    out = tmp_path / "take.npz"
    assert main(["generate", "--left", "a", "--right", "b", "--relation", "c", "--left", "d", "--right", "e",
                 "--relation", "f", "--num", "2", "--steps", "2", "--seed", "3", "--overlap", "12",
                 "--out", str(out)]) == 0
    assert "generated 2 motion(s) of 108 frames" in capsys.readouterr().out
    pipeline = load_pipeline("handx-cpu")
    settings = make_settings(pipeline, steps=2)
    expected = pipeline.generate_take((Triplet("a", "b", "c"), Triplet("d", "e", "f")), overlap=12, num=2, seed=3,
                                      settings=settings)
    with np.load(out, allow_pickle=False) as data:
        np.testing.assert_array_equal(data["joints"], expected)
        assert list(data["left"]) == ["a", "d"] and list(data["two_hands_relation"]) == ["c", "f"]
        assert json.loads(str(data["settings"])) == {"family": "diffusion", **settings.describe(), "seed": 3,
                                                     "num": 2, "length": 108, "mode": "text", "run": "handx-cpu"}
