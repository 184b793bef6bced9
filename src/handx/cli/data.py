"""``handx data ...``: build, inspect, filter, split and export dataset stores."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from handx.cli import options
from handx.errors import HandxInputError
from handx.motion import WINDOW


def register(groups: argparse._SubParsersAction) -> None:
    data = groups.add_parser("data", help="build and inspect dataset stores",
                             description="Build, inspect, filter, split and export handx dataset stores.")
    commands = data.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)

    p = commands.add_parser(
        "import", help="import capture files into a store",
        description="Import capture files (or directories of them) into a dataset store, creating it or appending "
                    "to it. Recordings are cut into 60-frame windows at 30 fps with the right wrist at the origin "
                    "at frame 0. Bad files are skipped and listed in OUT/reports/ (or fatal with --strict); a "
                    "single file given alone fails with an error. Re-running resumes.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or directories to import")
    p.add_argument("--format", required=True, choices=["handx-npz", "bvh", "leap", "mediapipe"],
                   help="handx-npz: public HandX release (*_can_pos_all_wotextfeat.npz, with *_mano.npz beside it); "
                        "bvh: left/right BVH pairs (leftHand.bvh + rightHand.bvh per folder); leap: Leap Motion "
                        "*.json.lz recordings; mediapipe: *.pose files (image space)")
    p.add_argument("--out", required=True, type=Path, help="store directory (created, or appended to)")
    p.add_argument("--stride", type=int, default=WINDOW,
                   help=f"frames between window starts for recordings (default {WINDOW}: non-overlapping)")
    p.add_argument("--strict", action="store_true", help="fail on the first bad file or clip instead of skipping it")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=_import)

    p = commands.add_parser("info", help="summarise a store",
                            description="Counts, hours, sources, licences, texts, splits and quality statistics.")
    p.add_argument("store", type=Path, metavar="DIR")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--no-quality", action="store_true", help="skip the quality statistics (faster on big stores)")
    p.set_defaults(func=_info)

    p = commands.add_parser(
        "synth", help="generate synthetic two-hand motion",
        description="Generate procedural two-hand clips with ground-truth event programs and texts into a store. "
                    "Deterministic for a seed; re-running resumes.")
    p.add_argument("--n", type=options.count, required=True, help="number of clips")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", type=Path, required=True, help="store directory (created, or appended to)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=_synth)

    p = commands.add_parser(
        "filter", help="drop clips that fail the quality filter",
        description="Copy the clips of DIR that pass the quality filter into --out: finite values, both hands, "
                    "bone lengths steady (drift <= 5%%) and anatomically possible, no jitter spikes, and the "
                    "paper's intensity filter (weighted joint angular speed, both hands >= tau_hand and mean "
                    ">= tau_avg deg/s). Every dropped clip is reported with its reason in OUT/reports/.")
    p.add_argument("store", type=Path, metavar="DIR")
    p.add_argument("--out", type=Path, required=True, help="output store directory")
    p.add_argument("--tau-hand", type=float, default=25.0, help="per-hand intensity threshold, deg/s (default 25)")
    p.add_argument("--tau-avg", type=float, default=30.0, help="two-hand mean intensity threshold, deg/s (default 30)")
    p.add_argument("--no-intensity", action="store_true", help="keep clips regardless of motion intensity")
    p.add_argument("--max-bone-drift", type=float, default=0.05, help="allowed relative bone length drift (0.05)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=_filter)

    p = commands.add_parser("export", help="export a store to another format",
                            description="Export a store (or one split) as a HandX-format .npz readable by the "
                                        "public HandX code.")
    p.add_argument("store", type=Path, metavar="DIR")
    p.add_argument("--format", choices=["handx-npz"], default="handx-npz", help="output format")
    p.add_argument("--out", type=Path, required=True, help="output file, e.g. test_can_pos_all_wotextfeat.npz")
    p.add_argument("--split", help="export only this split")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=_export)

    p = commands.add_parser(
        "split", help="assign clips to train/val/test",
        description="Write DIR/splits.json. By default all windows of a source recording go to the same split, "
                    "so no recording leaks between train and test; the assignment is a seeded hash, stable when "
                    "clips are appended.")
    p.add_argument("store", type=Path, metavar="DIR")
    p.add_argument("--test", type=options.fraction, default=0.1, help="fraction for test (default 0.1)")
    p.add_argument("--val", type=options.fraction, default=0.0, help="fraction for val (default 0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--by", choices=["sequence", "clip"], default="sequence", help="unit of assignment")
    p.set_defaults(func=_split)


def _import(args: argparse.Namespace) -> int:
    from handx.io.importer import import_paths

    report = import_paths(args.paths, args.format, args.out, stride=args.stride, strict=args.strict,
                          progress=not args.no_progress)
    print(f"imported {report.added} clip(s) from {report.items} item(s) into {args.out}"
          f" ({report.existing} already present, {len(report.skipped_windows)} window(s) skipped,"
          f" {len(report.errors)} error(s), {len(report.gaps)} gap(s) not bridged)")
    for gap in report.gaps:
        print(f"  gap of {gap['seconds']:.2f} s in {gap['file']} ({gap['from_s']:.2f}-{gap['to_s']:.2f} s): "
              "the recording is split there")
    for error in report.errors:
        print(f"  skipped {': '.join(str(v) for v in error.values() if v)}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from handx.io.store_ops import store_info

    info = store_info(args.store, quality=not args.no_quality, progress=sys.stderr.isatty())
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['path']}: {info['clips']} clips, {info['hours']:.3f} h ({info['frames']} frames at 30 fps), "
          f"{info['shards']} shard(s), {info['sequences']} source sequence(s)")
    print(f"  datasets: {_pairs(info['datasets'])}")
    print(f"  licences: {_pairs(info['licenses'])}")
    print(f"  coordinate spaces: {_pairs(info['spaces'])}")
    print(f"  annotated: {info['annotated_clips']} clip(s), {info['text_variants']} text variant(s)")
    print(f"  splits: {_pairs(info['splits']) or 'none'}")
    if "quality" in info:
        q = info["quality"]
        print(f"  quality: {q['passing']} of {info['clips']} pass the filter; "
              f"failing: {_pairs(q['failing_by_reason']) or 'none'}")
        for hand in ("left", "right"):
            s = q["intensity_deg_s"][hand]
            print(f"    {hand} intensity deg/s p5/median/p95: {s['p5']}/{s['median']}/{s['p95']}")
        s = q["hand_length_m"]
        print(f"    hand length m p5/median/p95: {s['p5']}/{s['median']}/{s['p95']}")
        c = q["contacts"]
        print(f"  two-hand contact: ratio {c['ratio']:.3f}, mean duration {c['mean_duration_s']:.2f} s, "
              f"frequency {c['frequency_hz']:.3f}/s, score {c['score']:.3f} ({c['segments']} segments)")
    return 0


def _pairs(mapping: dict) -> str:
    return ", ".join(f"{k}: {v}" for k, v in mapping.items())


def _synth(args: argparse.Namespace) -> int:
    from handx.synth.corpus import write_synthetic

    added = write_synthetic(args.n, args.seed, args.out, progress=not args.no_progress)
    print(f"synthesised {added} clip(s) into {args.out}")
    return 0


def _filter(args: argparse.Namespace) -> int:
    from handx.features.quality import QualityConfig
    from handx.io.store_ops import filter_store

    config = QualityConfig(max_bone_drift=args.max_bone_drift, tau_hand=args.tau_hand, tau_avg=args.tau_avg,
                           intensity=not args.no_intensity)
    report = filter_store(args.store, args.out, config, progress=not args.no_progress)
    print(f"kept {report.kept} clip(s) ({report.existing} already in {args.out}), dropped {len(report.dropped)}"
          + (f" ({_pairs(report.reason_counts)})" if report.dropped else "") + f"; report in {args.out}/reports/")
    return 0


def _export(args: argparse.Namespace) -> int:
    from handx.io.store_ops import export_handx_npz

    count = export_handx_npz(args.store, args.out, split=args.split, progress=not args.no_progress)
    print(f"exported {count} clip(s) to {args.out}")
    return 0


def _split(args: argparse.Namespace) -> int:
    from handx.io.store_ops import split_store

    fractions = {"train": 1.0 - args.test - args.val, "test": args.test}
    if args.val:
        fractions["val"] = args.val
    if fractions["train"] < 0:
        raise HandxInputError(None, f"--test + --val must not exceed 1, got {args.test} + {args.val}")
    sizes = split_store(args.store, fractions, seed=args.seed, by=args.by)
    print("split " + _pairs(sizes))
    return 0
