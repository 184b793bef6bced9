#!/usr/bin/env bash
# The handx demo: the pipeline that exists so far, on the embedded defaults.
#   1. synthesise two-hand clips with ground-truth programs and texts;
#   2. import the real captures in ../shared/data when present (BVH, Leap Motion, MediaPipe);
#   3. filter by quality and intensity, split, and summarise.
# Re-running resumes: finished steps add nothing.
set -euo pipefail
out=${DEMO_OUT:-outputs/demo}
shared=${SHARED_DATA:-../shared/data}
mkdir -p "$out"

echo "== synthesise 300 clips"
handx data synth --n 300 --seed 0 --out "$out/synth" --no-progress

if [ -d "$shared" ]; then
  echo "== import real capture from $shared"
  handx data import "$shared/manipnet" --format bvh --out "$out/real" --no-progress
  handx data import "$shared/leap" --format leap --out "$out/real" --no-progress
  handx data import "$shared/mediapipe" --format mediapipe --out "$out/real" --no-progress
  handx data info "$out/real"
else
  echo "== $shared not found: skipping the real-capture import"
fi

echo "== quality and intensity filter"
handx data filter "$out/synth" --out "$out/synth-filtered" --no-progress
handx data split "$out/synth-filtered" --test 0.1 --by clip
handx data info "$out/synth-filtered"
handx data export "$out/synth-filtered" --split test --out "$out/test_can_pos_all_wotextfeat.npz" --no-progress
echo "== demo outputs are in $out"
