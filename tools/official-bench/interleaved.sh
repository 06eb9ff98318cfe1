#!/usr/bin/env bash
# interleaved.py for several methods (one process per method: the official trees' top-level
# packages collide), then one table. Sizes as side_by_side.sh's: VASIS methods at LARGE_SIZE
# when SIZE is 64x128, GroupDNet at SMIS_SIZE.
#
#   OFFICIAL_ROOT=/work/official tools/official-bench/interleaved.sh
#   METHODS="spade oasis" SIZE=256x512 PAIRS=6 tools/official-bench/interleaved.sh
#   SWITCHES="precision=bf16" tools/official-bench/interleaved.sh
set -u
TOOLS=$(cd "$(dirname "$0")" && pwd)
HERE=$(cd "${OFFICIAL_ROOT:-../official}" 2>/dev/null && pwd) || { echo "no official trees at ${OFFICIAL_ROOT:-../official} (README.md)" >&2; exit 1; }
export OFFICIAL_ROOT=$HERE
PY=${PY:-$PWD/.venv/bin/python}
SIZE=${SIZE:-64x128}
PAIRS=${PAIRS:-8}
WARMUP=${WARMUP:-2}
THREADS=${THREADS:-2}
METHODS=${METHODS:-"spade clade oasis scgan va-spade va-clade va-oasis groupdnet"}
LARGE_SIZE=${LARGE_SIZE:-128x256}
SMIS_SIZE=${SMIS_SIZE:-256x512}
SWITCHES=${SWITCHES:-}
OUT=${OUT:-$HERE/results/interleaved-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"

# shellcheck source=sizes.sh
. "$TOOLS/sizes.sh"

for m in $METHODS; do
  s=$(size_of "$m")
  echo "[$(date +%T)] $m $s (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  switch_args=()
  for kv in $SWITCHES; do switch_args+=(--switch "$kv"); done
  PYTHONPATH="$HERE/extra${PYTHONPATH:+:$PYTHONPATH}" "$PY" "$TOOLS/interleaved.py" \
    --method "$m" --size "$s" --pairs "$PAIRS" --warmup "$WARMUP" --threads "$THREADS" \
    "${switch_args[@]}" >"$OUT/$m.json" 2>"$OUT/$m.log" \
    || echo "  $m FAILED (see $OUT/$m.log)" >&2
done

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), load now $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ); results in $OUT"
"$PY" - "$OUT" $METHODS <<'PYEOF'
import json, pathlib, sys

out, methods = pathlib.Path(sys.argv[1]), sys.argv[2:]
print(f"{'method':10s} {'size':>8s} {'official s':>10s} {'sislab s':>9s} {'pairs':>5s} "
      f"{'ratio (median of pairs)':>23s} {'min-max':>11s} {'switches':>10s}")
for m in methods:
    try:
        r = json.loads((out / f"{m}.json").read_text().strip().splitlines()[-1])
    except (OSError, IndexError, ValueError):
        print(f"{m:10s} n/a")
        continue
    print(f"{m:10s} {r['size']:>8s} {r['official_median_s']:>10.2f} {r['sislab_median_s']:>9.2f} "
          f"{len(r['pair_ratios']):>5d} {r['ratio_median']:>23.3f} "
          f"{r['ratio_min']:.2f}-{r['ratio_max']:.2f} {' '.join(r['switches']) or '-':>10s}")
PYEOF
