#!/usr/bin/env bash
# The handx demo: the main job on the embedded defaults.
#   1. the built-in models (handx models); generate from text with the built-in generator, then in every
#      conditioning mode (a fixed left or right hand, both wrist paths, in-betweening, keyframes), and render;
#   2. score the built-in generator against held-out clips of the synthetic benchmark (the recipe's test split,
#      never trained on) with the built-in evaluator;
#   3. synthesise clips, import the real captures in ../shared/data when present, annotate them;
#   4. filter, split, and train a tiny generator for a few steps to show that training works;
#   5. render a strip of real beside generated motion, and export as BVH and JSON.
# Re-running resumes: finished steps add nothing.
set -euo pipefail
out=${DEMO_OUT:-outputs/demo}
shared=${SHARED_DATA:-../shared/data}
mkdir -p "$out"

echo "== built-in models"
handx models
echo "== generate from text with the built-in generator"
handx generate --left "The left hand makes a fist, then opens up." \
    --right "The right hand points with the index finger." --relation "The two hands move independently of each other." \
    --num 2 --out "$out/generated.npz" --render "$out/generated.mp4"

echo "== the benchmark's held-out clips (the recipe's synthetic corpus, seed 0: the same clips and split)"
handx data synth --n 1000 --seed 0 --out "$out/bench" --no-progress
[ -f "$out/bench/splits.json" ] || handx data split "$out/bench" --test 0.1 --by clip
python - "$out" <<'PY'
import sys
import numpy as np
from handx.io.store import Store
out = sys.argv[1]
store = Store(f"{out}/bench")
test = store.ids("test")
np.save(f"{out}/condition.npy", np.asarray(store.motion(store.index_of(test[0]))))
PY
echo "== every conditioning mode, on a held-out clip"
for mode in left-hand right-hand wrists inbetween keyframes; do
  extra=()
  [ "$mode" = keyframes ] && extra=(--frames 0,30,59)
  handx generate --left "The left hand opens and closes." --right "The right hand makes a fist." \
      --relation "The two hands move independently of each other." --condition "$out/condition.npy" \
      --mode "$mode" "${extra[@]}" --out "$out/cond-$mode.npz" --render "$out/cond-$mode.mp4"
done

echo "== score the built-in generator on held-out clips (a quick run: 2 groups, 5 replications)"
handx eval --data "$out/bench" --ckpt handx-cpu --groups 2 --replications 5 --out "$out/eval" --no-progress

echo "== synthesise 300 clips"
handx data synth --n 300 --seed 0 --out "$out/synth" --no-progress

if [ -d "$shared" ]; then
  echo "== import real capture from $shared"
  handx data import "$shared/manipnet" --format bvh --out "$out/real" --no-progress
  handx data import "$shared/leap" --format leap --out "$out/real" --no-progress
  handx data import "$shared/mediapipe" --format mediapipe --out "$out/real" --no-progress
  handx data info "$out/real"
  echo "== motion codes and descriptions for the real captures"
  handx annotate "$out/real" --writer template --no-progress
  python - "$out/real" <<'PY'
import sys
from handx.io.store import Store
store = Store(sys.argv[1])
record = store.records[0]
print(f"{record.id}:")
for key in ("left", "right", "two_hands_relation"):
    print(f"  {key}: {record.texts[key][0]}")
    print(f"  {key} (detailed): {record.texts[key][4]}")
PY
else
  echo "== $shared not found: skipping the real-capture import"
fi

echo "== quality and intensity filter"
handx data filter "$out/synth" --out "$out/synth-filtered" --no-progress
handx data split "$out/synth-filtered" --test 0.1 --by clip
handx data info "$out/synth-filtered"
handx data export "$out/synth-filtered" --split test --out "$out/test_can_pos_all_wotextfeat.npz" --no-progress
echo "== training works: a tiny generator for 200 steps (the built-in took the recipe: recipes/builtin.sh)"
handx train diffusion --data "$out/synth-filtered" --out "$out/run-tiny" --preset tiny --steps 200 \
    --batch-size 16 --save-every 100 --eval-every 100 --no-progress
handx generate --ckpt "$out/run-tiny" --left "The left hand closes into a fist." \
    --right "The right index finger points forward." --relation "The hands act independently." \
    --num 1 --steps 25 --out "$out/generated-tiny.npz"
echo "== render and export"
handx render "$out/bench" --clips "$(python -c "from handx.io.store import Store; print(Store('$out/bench').ids('test')[0])")" \
    "$out/cond-wrists.npz" --out "$out/strip.png" --frames 5 --no-progress
handx export "$out/generated.npz" --format bvh --out "$out/export"
handx export "$out/generated.npz" --format json --out "$out/export"
echo "== demo outputs are in $out (browse them with: handx view $out/synth-filtered)"
