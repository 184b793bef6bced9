#!/usr/bin/env bash
# recipes/builtin.sh: build handx's built-in models from scratch, on a CPU, in one command.
#
#   bash recipes/builtin.sh [OUT]        (default OUT=runs/builtin; re-running resumes every step)
#
#   1. corpus: 8,000 synthetic clips (handx data synth, seed 0; 90/10 train/test split by clip; the first 2,000
#      also described by the template writer, appended as five more variants) plus the real
#      captures of ../shared/data (ManipNet BVH, Leap Motion, MediaPipe), windowed and described with the
#      offline template writer. SHARED_DATA=path points elsewhere; without it the corpus is synthetic only.
#   2. evaluator: the TMR-style judge of the synthetic benchmark (small preset, 800 steps × 64, lr 1e-3) on the
#      synthetic train split; its held-out R-precision is logged in OUT/evaluator/metrics.jsonl.
#   3. generator: the `cpu` diffusion preset (4 layers × 256, 4-frame tokens, fused pooled-text branches) on
#      synthetic train + real, 7,000 steps of batch 64 (GENERATOR_STEPS), lr 1e-3 with 200 warm-up steps and
#      cosine decay to 1e-4, EMA 0.999; the intra-hand contact term at weight 0.5 (CONTACT_LOSS=w changes it, 0
#      turns it off; measured in docs/training.md); held-out EMA loss every 500 steps (the best step is kept in OUT/generator/best; every
#      checkpoint is kept for the learning curve). Text and motion features are computed once per store.
#   4. package: both models as built-ins (float16 EMA weights of the best step + config + statistics +
#      model.json) into OUT/assets.
#   5. benchmark: handx eval of the packaged generator against the synthetic test split (never trained on), 20
#      replications, into OUT/eval; the scores go into model.json. The learning curve: R@3 of every kept
#      checkpoint (benchmarks/learning_curve.py). Install with: cp -r OUT/assets/* src/handx/assets/
#
# Measured on a 2-core x86_64 VM (docs/training.md): about 2 hours in all.
set -euo pipefail
out=${1:-runs/builtin}
shared=${SHARED_DATA:-../shared/data}
steps=${GENERATOR_STEPS:-7000}
contact=${CONTACT_LOSS:-0.5}
mkdir -p "$out"
export PYTHONHASHSEED=0
# Several torch processes on few cores (a recipe step beside other work): OpenMP threads that spin while they
# wait make each step up to 10× slower; passive waiting avoids it (measured, docs/training.md).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

echo "== 1. corpus"
handx data synth --n 8000 --seed 0 --out "$out/synth" --no-progress
[ -f "$out/synth/splits.json" ] || handx data split "$out/synth" --test 0.1 --by clip
# other phrasings: the template writer's five variants after the grammar's own, for the first 2,000 clips
handx annotate "$out/synth" --writer template --append --limit 2000 --no-progress
data=(--data "$out/synth")
if [ -d "$shared" ]; then
  if [ ! -f "$out/real/.annotated" ]; then
    handx data import "$shared/manipnet" --format bvh --out "$out/real" --no-progress
    handx data import "$shared/leap" --format leap --out "$out/real" --no-progress
    handx data import "$shared/mediapipe" --format mediapipe --out "$out/real" --no-progress
    handx annotate "$out/real" --writer template --no-progress
    touch "$out/real/.annotated"
  fi
  data+=(--data "$out/real")
fi

echo "== 2. evaluator"
handx train evaluator --data "$out/synth" --out "$out/evaluator" --preset small --steps 800 --batch-size 64 \
    --lr 1e-3 --warmup 50 --save-every 200 --eval-every 200 --no-progress

echo "== 3. generator"
handx train diffusion "${data[@]}" --out "$out/generator" --preset cpu --steps "$steps" --batch-size 64 \
    --lr 1e-3 --warmup 200 --contact-loss "$contact" --eval-every 500 --save-every 500 --keep 20 --val-items 128 \
    --no-progress

echo "== 4. package"
python -m handx.assets.package --generator "$out/generator" --evaluator "$out/evaluator" --out "$out/assets"

echo "== 5. benchmark and learning curve"
handx eval --evaluator "$out/assets/handx-eval-synth" --data "$out/synth" --ckpt "$out/assets/handx-cpu" \
    --out "$out/eval" --replications 20 --groups 2 --no-progress
python -m handx.assets.package --generator "$out/generator" --evaluator "$out/evaluator" --out "$out/assets" \
    --results "$out/eval/results.json"
python benchmarks/learning_curve.py --run "$out/generator" --evaluator "$out/assets/handx-eval-synth" \
    --data "$out/synth" --out "$out/learning_curve.json"
echo "== built-in models in $out/assets (install them with: cp -r $out/assets/* src/handx/assets/)"
