"""``handx export``: clips → BVH (for Blender and other animation tools) or JSON (joints, texts, codes)."""

from __future__ import annotations

import argparse
from pathlib import Path

ROUND_TRIP_OK_MM = 2.0


def register(groups: argparse._SubParsersAction) -> None:
    p = groups.add_parser(
        "export", help="export clips as BVH or JSON",
        description="Export clips from a store, a 'handx generate' .npz, a HandX release .npz or a .npy/.npz "
                    "holding (T, 2, 21, 3) or (K, T, 2, 21, 3) joints. "
                    "BVH: one file per clip with both hands (root 'Scene', children 'left_wrist' and "
                    "'right_wrist', joints named like 'left_index_mcp', fingertips as End Sites), a fixed "
                    "skeleton per hand from the clip's median bone lengths in a flat rest pose, and joint "
                    "rotations found by inverse kinematics. Units are CENTIMETRES with Y up (file X, Y, Z = "
                    "100 x (x, z, -y) of handx's x right, y forward, z up): in Blender, File > Import > Motion "
                    "Capture (.bvh) with the default Forward -Z / Up Y, and Scale 0.01 for metres. The largest "
                    "round-trip error (file read back vs. input) is printed per clip; it is ~0 for clips with "
                    "constant bone lengths and a few mm where captured bones drift. "
                    "JSON: format 'handx-clip' version 1 with joints (metres, 0.1 mm), texts and motion codes. "
                    "Handx clips are 30 fps; --fps only sets the frame rate written to the file. For a batch a "
                    "clip that cannot be exported is reported and skipped.")
    p.add_argument("path", type=Path, metavar="FILE_OR_STORE", help="a store directory, .npz or .npy")
    p.add_argument("--format", required=True, choices=["bvh", "json"], help="bvh (animation) or json (data)")
    p.add_argument("--out", type=Path, required=True, metavar="OUT",
                   help="the output file when there is one clip (or an existing folder to write it into); "
                        "otherwise a folder that gets one file per clip, named from the clip id")
    p.add_argument("--clips", metavar="ID,ID,...", help="export only these clip ids (comma-separated)")
    p.add_argument("--fps", type=float, default=30.0, help="frame rate written to the file (default 30)")
    p.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from handx.viz.export import export_clips

    ids = [i.strip() for i in args.clips.split(",") if i.strip()] if args.clips else None
    report = export_clips(args.path, args.format, args.out, ids=ids, fps=args.fps)
    for item in report.written:
        line = f"wrote {item.path} ({item.id}, {item.frames} frames"
        if item.max_error_mm is not None:
            line += f", max round-trip error {item.max_error_mm:.3f} mm"
            if item.max_error_mm > ROUND_TRIP_OK_MM:
                line += ": the clip's bone lengths vary; a fixed skeleton follows their medians"
        print(line + ")")
    for error in report.skipped:
        print(f"skipped {error}")
    if report.format == "bvh" and report.written:
        print("BVH units: centimetres, Y up (Blender: import with Scale 0.01 for metres)")
    print(f"exported {len(report.written)} clip(s) as {report.format}, skipped {len(report.skipped)}")
    return 0 if report.written else 1
