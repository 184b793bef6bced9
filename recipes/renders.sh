#!/usr/bin/env bash
# recipes/renders.sh: the renders in docs/img of the built-in generator beside real motion for the same texts.
#
#   bash recipes/renders.sh [SYNTH_STORE] [GENERATOR]     (defaults: runs/builtin/synth, handx-cpu)
#
# Two held-out test clips of the recipe's synthetic corpus (never trained on): index fingertips touching
# (builtin-0.png) and a double clap (builtin-1.png). Each image: the real clip on top, two samples below.
set -euo pipefail
store=${1:-runs/builtin/synth}
generator=${2:-handx-cpu}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
render() {  # render ID OUT: the clip's first text variant, two samples, seed 0
  python - "$store" "$1" "$tmp/texts.txt" <<'PY'
import sys
from handx.io.store import Store
store = Store(sys.argv[1])
record = store.records[[r.id for r in store.records].index(sys.argv[2])]
open(sys.argv[3], "w").write("\n".join(record.texts[k][0] for k in ("left", "right", "two_hands_relation")))
PY
  mapfile -t texts < "$tmp/texts.txt"
  handx generate --ckpt "$generator" --left "${texts[0]}" --right "${texts[1]}" --relation "${texts[2]}" \
      --num 2 --seed 0 --out "$tmp/gen.npz"
  handx render "$store" --clips "$1" "$tmp/gen.npz" --out "$2" --frames 6 --columns 1 --no-progress
}
render handx-synth/0/0000441 docs/img/builtin-0.png
render handx-synth/0/0000106 docs/img/builtin-1.png
