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
#      synthetic train + real, batch 64, lr 1e-3 with 200 warm-up steps and cosine decay, EMA 0.999, held-out
#      checks every 250 steps (EMA loss and R@3 of 128 generated test clips by the evaluator); the best check
#      is kept in OUT/generator/best. Text and motion features are computed once per store.
#   4. benchmark: handx eval of the generator against the synthetic test split (never trained on), 20
#      replications, into OUT/eval.
#   5. package: both models as built-ins (float16 EMA weights + config + statistics + model.json with the
#      scores) into OUT/assets; `make builtin-install` copies them into src/handx/assets.
#
# Measured on a 2-core x86_64 VM (docs/benchmarks.md): about 2 hours in all.
set -euo pipefail
out=${1:-runs/builtin}
shared=${SHARED_DATA:-../shared/data}
steps=${GENERATOR_STEPS:-3000}
mkdir -p "$out"
export PYTHONHASHSEED=0

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
    --lr 1e-3 --warmup 200 --eval-every 250 --save-every 250 --val-items 128 --val-evaluator "$out/evaluator" \
    --no-progress

echo "== 4. benchmark"
handx eval --evaluator "$out/evaluator" --data "$out/synth" --ckpt "$out/generator" --out "$out/eval" \
    --replications 20 --no-progress

echo "== 5. package"
python -m handx.assets.package --generator "$out/generator" --evaluator "$out/evaluator" \
    --results "$out/eval/results.json" --out "$out/assets"
echo "== built-in models in $out/assets (install them with: make builtin-install BUILTIN=$out)"
