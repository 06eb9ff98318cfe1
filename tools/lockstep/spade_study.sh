#!/usr/bin/env bash
# SPADE learning study: official NVlabs/SPADE vs sislab, same data, same hyperparameters.
# Run from the sislab project root (the venv is .venv there, or set SISLAB_PY):
#
#   tools/lockstep/spade_study.sh                      # data, 2 x 2 runs, eval, report
#   STAGES=data NUM=16 VAL=8 tools/lockstep/spade_study.sh   # only the data (small)
#   STAGES="eval report" tools/lockstep/spade_study.sh      # redo renders, FID/KID, report
#   SEEDS="2 3" STAGES="train eval" tools/lockstep/spade_study.sh   # more seeds
#
# Environment: OFFICIAL_ROOT (default ../official; the tree is $OFFICIAL_ROOT/spade),
# LOCKSTEP_WORK (default ../lockstep-work; everything is written there), SISLAB_PY (default
# .venv/bin/python), SISLAB_CLI (default: sislab next to SISLAB_PY), EPOCHS (6), SEEDS ("0 1"),
# NUM / VAL (256 / 64 synthetic train / val images), STAGES ("data train eval report"),
# WAIT_FOR (a file to wait for, up to 60 min, before training; default: no waiting).
#
# Runs one after another (never in parallel): official s0, sislab s0, official s1, sislab s1.
# NUM / batch 4 iterations per epoch: 256 / 4 = 64, EPOCHS=6 -> 384 iterations per run.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${SISLAB_PY:-.venv/bin/python}
case $PY in /*) ;; *) PY=$PWD/$PY ;; esac
SISLAB=${SISLAB_CLI:-$(dirname "$PY")/sislab}
[ -x "$PY" ] || { echo "no python at $PY: run from the sislab project root or set SISLAB_PY" >&2; exit 2; }
[ -x "$SISLAB" ] || { echo "no sislab CLI at $SISLAB: set SISLAB_CLI" >&2; exit 2; }
OFFICIAL_ROOT=${OFFICIAL_ROOT:-../official}
case $OFFICIAL_ROOT in /*) ;; *) OFFICIAL_ROOT=$PWD/$OFFICIAL_ROOT ;; esac
LOCKSTEP_WORK=${LOCKSTEP_WORK:-../lockstep-work}
mkdir -p "$LOCKSTEP_WORK" && LOCKSTEP_WORK=$(cd "$LOCKSTEP_WORK" && pwd)
EPOCHS=${EPOCHS:-6}
SEEDS=${SEEDS:-"0 1"}
NUM=${NUM:-256}
VAL=${VAL:-64}
WAIT_FOR=${WAIT_FOR:-}
STAGES=${STAGES:-"data train eval report"}
export OFFICIAL_ROOT LOCKSTEP_WORK NUM
export TMPDIR=$LOCKSTEP_WORK/tmp SISLAB_CACHE_DIR=$LOCKSTEP_WORK/cache RAY_TMPDIR=$LOCKSTEP_WORK/rt
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2   # both sides: 2 intra-op threads (Ray workers inherit)
cd "$LOCKSTEP_WORK" || exit 2
mkdir -p tmp cache rt logs runs results specs
log() { echo "[$(date +%T)] $* (load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null))" | tee -a logs/run_all.log; }
has() { [[ " $STAGES " == *" $1 "* ]]; }

if has data; then
  if [ ! -e data/synth/dataset.json ]; then
    "$SISLAB" data synth data/synth --classes 8 --size 64 --num "$NUM" --val "$VAL" --seed 0 || exit 3
  fi
  "$PY" "$HERE/make_data.py" | tee results/data_check.txt
  [ "${PIPESTATUS[0]}" = 0 ] || { log "data check FAILED"; exit 3; }
fi

if has train; then
  if [ -n "$WAIT_FOR" ]; then
    for _ in $(seq 120); do [ -e "$WAIT_FOR" ] && break; sleep 30; done
    [ -e "$WAIT_FOR" ] || { log "no $WAIT_FOR after 60 min"; exit 1; }
  fi
  for seed in $SEEDS; do
    bash "$HERE/make_spec.sh" "$seed" "$EPOCHS" > "specs/sislab_s$seed.yaml"
    "$SISLAB" validate "specs/sislab_s$seed.yaml" || exit 2
  done
  for seed in $SEEDS; do
    log "official seed $seed start"
    rm -rf "runs/official_s$seed"
    "$PY" "$HERE/official_train.py" --seed "$seed" --epochs "$EPOCHS" --out "runs/official_s$seed" \
      > "logs/official_s$seed.out" 2> "logs/official_s$seed.err" || log "official seed $seed FAILED"
    log "official seed $seed done"
    log "sislab seed $seed start"
    rm -rf "runs/sislab_s$seed"
    "$SISLAB" run "specs/sislab_s$seed.yaml" --run-dir "$LOCKSTEP_WORK/runs/sislab_s$seed" --num-cpus 2 \
      > "logs/sislab_s$seed.out" 2>&1 || log "sislab seed $seed FAILED"
    log "sislab seed $seed done"
  done
fi

if has eval; then
  for seed in $SEEDS; do
    # sislab: per-iteration losses from MLflow, val renders at iteration 0 and at the end
    "$PY" "$HERE/sislab_losses.py" "$LOCKSTEP_WORK/runs/sislab_s$seed" "runs/sislab_s$seed/losses.csv" \
      > "runs/sislab_s$seed/summary_losses.json"
    ck=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["checkpoint"] or "")' \
      "runs/sislab_s$seed/summary_losses.json")
    [ -n "$ck" ] || { log "no checkpoint in runs/sislab_s$seed"; continue; }
    "$PY" "$HERE/sislab_gen.py" --spec "specs/sislab_s$seed.yaml" --out "runs/sislab_s$seed/gen_iter0" \
      > "runs/sislab_s$seed/gen_iter0.json"
    "$PY" "$HERE/sislab_gen.py" --checkpoint "$ck" --out "runs/sislab_s$seed/gen_final" \
      > "runs/sislab_s$seed/gen_final.json"
  done
  for seed in $SEEDS; do
    for side in official sislab; do
      for which in iter0 final; do
        out="results/fid_${side}_s${seed}_${which}.json"
        log "FID $side s$seed $which"
        "$SISLAB" eval fid data/png/val/images "runs/${side}_s$seed/gen_$which" --json \
          2> "logs/fid_${side}_s${seed}_${which}.err" | tail -1 > "$out"
      done
    done
  done
fi

if has report; then
  # shellcheck disable=SC2086
  "$PY" "$HERE/analyze.py" --seeds $SEEDS | tee results/report.md
  "$PY" "$HERE/montage.py" --which final --seeds $SEEDS || true
  "$PY" "$HERE/montage.py" --which iter0 --seeds $SEEDS || true
fi
log "all done"
