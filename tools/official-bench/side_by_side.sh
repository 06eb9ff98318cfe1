#!/usr/bin/env bash
# Side-by-side CPU benchmark: official implementations vs sislab, one training iteration
# (G step + D step, each repo's own losses, VGG19 with random weights), batch 1, fp32,
# WARMUP + ITERS timed iterations (median), every run in its own process, official and
# sislab alternating: O S O S ... per method.
#
#   tools/official-bench/side_by_side.sh                  # all 8 methods, 64x128, 2 rounds
#   METHODS="spade" ROUNDS=3 SIZE=256x512 tools/official-bench/side_by_side.sh
#   SISLAB_ARGS="--channels-last --precision bf16" tools/official-bench/side_by_side.sh
#   SWITCHES="--precision bf16" tools/official-bench/side_by_side.sh   # fp32 and switched, same run
#
# Methods: spade clade oasis scgan va-spade va-clade va-oasis groupdnet. The VASIS methods run
# at LARGE_SIZE (default 128x256) whenever SIZE is 64x128 (their smallest size: reflect padding
# of a 1x2 latent map fails), groupdnet always at SMIS_SIZE (256x512, SMIS's native size). sislab side: `sislab bench train M --dataset cityscapes --size S --batch 1 --iters N
# --warmup W --precision fp32 --device cpu --json $SISLAB_ARGS`, plus the model config the
# official run uses where sislab's default differs: scgan `--model preset=cityscapes` (the ADE20K
# YAML values: 4 norm candidates), groupdnet `--model preset=cityscapes` (ngf 280, SMIS's
# Cityscapes script). SISLAB_ARGS adds the opt-in switches (--channels-last, --compile,
# --precision bf16) to the sislab side only; the official side always runs its fp32 default.
# SWITCHES runs a second sislab variant after each sislab run (O S S' per round) with those
# switches added, printed as a second table: fp32 and switched ratios from one interleaved run.
# Results (JSON per run + logs) go to $OUT (default $OFFICIAL_ROOT/results/<timestamp>).
set -u

TOOLS=$(cd "$(dirname "$0")" && pwd)
HERE=$(cd "${OFFICIAL_ROOT:-../official}" 2>/dev/null && pwd) || { echo "no official trees at ${OFFICIAL_ROOT:-../official} (README.md)" >&2; exit 1; }
export OFFICIAL_ROOT=$HERE
PY=${PY:-$PWD/.venv/bin/python}
SISLAB=${SISLAB:-$PWD/.venv/bin/sislab}
SIZE=${SIZE:-64x128}
ROUNDS=${ROUNDS:-2}
ITERS=${ITERS:-3}
WARMUP=${WARMUP:-1}
THREADS=${THREADS:-2}
METHODS=${METHODS:-"spade clade oasis scgan va-spade va-clade va-oasis groupdnet"}
LARGE_SIZE=${LARGE_SIZE:-128x256}
SMIS_SIZE=${SMIS_SIZE:-256x512}
SISLAB_ARGS=${SISLAB_ARGS:-}
SWITCHES=${SWITCHES:-}
OUT=${OUT:-$HERE/results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"

# Same intra-op thread count for both sides (official_step.py also calls set_num_threads).
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS


# shellcheck source=sizes.sh
. "$TOOLS/sizes.sh"

model_args() {  # method -> sislab --model options matching the official run
  case "$1" in
    scgan|groupdnet) echo "--model preset=cityscapes" ;;
  esac
}

run_official() {  # method round
  local m=$1 r=$2 s
  s=$(size_of "$m")
  echo "[$(date +%T)] official $m $s round $r  (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  PYTHONPATH="$HERE/extra${PYTHONPATH:+:$PYTHONPATH}" \
    "$PY" "$TOOLS/official_step.py" --repo "$m" --size "$s" --iters "$ITERS" \
    --warmup "$WARMUP" --threads "$THREADS" \
    >"$OUT/$m.official.$r.json" 2>"$OUT/$m.official.$r.log" \
    || echo "  official $m round $r FAILED (see $OUT/$m.official.$r.log)" >&2
}

run_sislab() {  # method round [side name] [extra switches]
  local m=$1 r=$2 name=${3:-sislab} extra=${4:-} s
  s=$(size_of "$m")
  echo "[$(date +%T)] $name   $m $s round $r $extra (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  # shellcheck disable=SC2046,SC2086
  "$SISLAB" bench train "$m" --dataset cityscapes --size "$s" --batch 1 \
    --iters "$ITERS" --warmup "$WARMUP" --precision fp32 --device cpu --json \
    $(model_args "$m") $SISLAB_ARGS $extra \
    >"$OUT/$m.$name.$r.json" 2>"$OUT/$m.$name.$r.log" \
    || echo "  $name $m round $r FAILED (see $OUT/$m.$name.$r.log)" >&2
}

for m in $METHODS; do
  for r in $(seq "$ROUNDS"); do
    run_official "$m" "$r"
    run_sislab "$m" "$r"
    [ -n "$SWITCHES" ] && run_sislab "$m" "$r" switched "$SWITCHES"
  done
done

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), load now $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ)"
"$PY" - "$OUT" "$SIZE" "$SISLAB_ARGS" "$SWITCHES" $METHODS <<'EOF'
import json, pathlib, statistics, sys

out, size, switches, second = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
methods = sys.argv[5:]

def load(path):
    try:
        lines = [l for l in path.read_text().splitlines() if l.strip().startswith("{")]
        return json.loads(lines[-1]) if lines else None
    except OSError:
        return None

def side(m, name, key_s, key_rss):
    runs = [load(p) for p in sorted(out.glob(f"{m}.{name}.*.json"))]
    runs = [r for r in runs if r]
    return [r[key_s] for r in runs], [r[key_rss] for r in runs]

hdr = f"{'method':10s} {'size':>8s} {'official s/iter':>22s} {'sislab s/iter':>22s} {'ratio s/o':>9s} {'official RSS MB':>16s} {'sislab RSS MB':>14s} {'RSS s/o':>8s}"
tables = [("sislab", switches or "(no switches)")]
if second:
    tables.append(("switched", f"{switches} {second}".strip()))
for name, label in tables:
    print(f"\nsize {size} (va-oasis/groupdnet: see column), batch 1, CPU; official fp32, sislab fp32 "
          f"{label}; per-run medians in brackets; results in {out}")
    print(hdr)
    print("-" * len(hdr))
    for m in methods:
        o_s, o_rss = side(m, "official", "s_per_iter_median", "peak_rss_mb")
        s_s, s_rss = side(m, name, "median_s", "peak_memory_mb")
        runs = [load(p) for p in sorted(out.glob(f"{m}.{name}.*.json"))]
        msize = next((f"{r['height']}x{r['width']}" for r in runs if r), "?")
        def fmt(v):
            return f"{statistics.median(v):.2f} [{', '.join(f'{x:.2f}' for x in v)}]" if v else "n/a"
        ratio = f"{statistics.median(s_s) / statistics.median(o_s):.2f}" if o_s and s_s else "n/a"
        orss = f"{max(o_rss):.0f}" if o_rss else "n/a"
        srss = f"{max(s_rss):.0f}" if s_rss else "n/a"
        rss_ratio = f"{max(s_rss) / max(o_rss):.2f}" if o_rss and s_rss else "n/a"
        print(f"{m:10s} {msize:>8s} {fmt(o_s):>22s} {fmt(s_s):>22s} {ratio:>9s} {orss:>16s} {srss:>14s} {rss_ratio:>8s}")
EOF
