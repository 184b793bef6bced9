#!/usr/bin/env bash
# The handx demo: the pipeline that exists so far, on the embedded defaults.
#   1. synthesise two-hand clips with ground-truth programs and texts;
#   2. import the real captures in ../shared/data when present (BVH, Leap Motion, MediaPipe);
#   3. filter by quality and intensity, split, and summarise;
#   4. extract motion codes and write five descriptions per clip with the offline template writer;
#   5. train a tiny diffusion generator on the synthetic clips and generate from text, then with a fixed hand;
#   6. train a tiny evaluator and score the generator against the test split (the full table with intervals);
#   7. render the generations to video and a still strip, and export one as BVH and JSON.
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
echo "== train a tiny text-to-motion diffusion model (resumes if run before)"
handx train diffusion --data "$out/synth-filtered" --out "$out/run-tiny" --preset tiny --steps 200 \
    --batch-size 16 --save-every 100 --no-progress
handx generate --ckpt "$out/run-tiny" --left "The left hand closes into a fist." \
    --right "The right index finger points forward." --relation "The hands act independently." \
    --num 2 --steps 25 --out "$out/generated.npz"
python - "$out" <<'PY'
import sys
import numpy as np
from handx.io.store import Store
out = sys.argv[1]
np.save(f"{out}/condition.npy", np.asarray(Store(f"{out}/synth-filtered").motion(0)))
PY
handx generate --ckpt "$out/run-tiny" --left "The left hand holds its pose." \
    --right "The right hand opens and closes." --relation "The hands stay apart." \
    --condition "$out/condition.npy" --mode left-hand --steps 25 --out "$out/reaction.npz" \
    --render "$out/reaction.mp4"
echo "== train a tiny evaluator and benchmark the generator on the test split"
handx train evaluator --data "$out/synth-filtered" --out "$out/evaluator-tiny" --preset tiny --steps 400 \
    --batch-size 64 --lr 1e-3 --warmup 50 --save-every 200 --no-progress
handx eval --evaluator "$out/evaluator-tiny" --data "$out/synth-filtered" --ckpt "$out/run-tiny" \
    --groups 2 --replications 5 --steps 10 --out "$out/eval" --no-progress
echo "== render and export"
handx render "$out/generated.npz" --out "$out/generated.mp4" --timeline --no-progress
handx render "$out/synth-filtered" --clips "$(python -c "from handx.io.store import Store; print(Store('$out/synth-filtered').records[0].id)")" \
    "$out/generated.npz" --out "$out/strip.png" --frames 5 --no-progress
handx export "$out/generated.npz" --format bvh --out "$out/export"
handx export "$out/generated.npz" --format json --out "$out/export"
echo "== demo outputs are in $out (browse them with: handx view $out/synth-filtered)"
