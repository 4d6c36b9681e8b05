#!/usr/bin/env bash
# Rebuilds the bundled kairos-nano-aloha weights (data/models/kairos-nano-aloha) from nothing, on
# the CPU: records the simulated ALOHA transfer-cube demonstrations, then trains in three stages.
# docs/model-card.md gives what each stage is for and how long it took on a 2-core machine
# (about 30 min of recording and 3 h of training).
#
# Usage (after `make setup`):  scripts/train_default_model.sh [WORK]      (default WORK=runs/default)
#
# Re-running continues where it stopped: a finished recording (WORK/demos/NAME/.done) or training
# stage (WORK/NAME/train.json without a checkpoint.pt) is skipped, an interrupted recording is
# recorded again, an interrupted training stage is resumed from its checkpoint (--resume gives the
# same result as an uninterrupted run). The weights end in WORK/tc4/; copy its *.safetensors (and
# train.json) into data/models/kairos-nano-aloha/ to replace the bundled ones.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-runs/default}
BIN=${VENV:-.venv}/bin
export MUJOCO_GL=${MUJOCO_GL:-egl}
DEMOS=$WORK/demos
PROFILE=config/aloha.yaml  # its perception section holds the head-camera crop the weights use

record() {  # NAME, then kairos-sim record options
  local name=$1; shift
  if [ -f "$DEMOS/$name/.done" ]; then echo "== demos/$name: recorded"; return; fi
  echo "== recording demos/$name"
  "$BIN/kairos-sim" record --task aloha_transfer_cube "$@" --force "$DEMOS/$name"
  touch "$DEMOS/$name/.done"
}

train() {  # NAME, then kairos-train options
  local name=$1; shift
  local out=$WORK/$name mode=()
  if [ -f "$out/train.json" ] && [ ! -f "$out/checkpoint.pt" ]; then echo "== $name: trained"; return; fi
  if [ -f "$out/checkpoint.pt" ]; then mode=(--resume); fi
  echo "== training $name ${mode[*]}"
  "$BIN/kairos-train" "$out" --profile "$PROFILE" --action-topic /joint_commands --checkpoint-every 100 \
    "$@" "${mode[@]}"
}

# Demonstrations by the scripted expert, seeds disjoint from the evaluation seeds (0-49) and from
# data/demo_transfer_cube (9000); failed episodes are dropped.
record train --episodes 143 --seed 1000
record train_b --episodes 155 --seed 1200
# Perturbed demonstrations (DART-style): the expert's targets executed with a smooth random offset,
# labelled with the expert's own targets, so the policy sees the way back to the path.
record dart --episodes 250 --seed 30000 --action-noise 0.006 --max-attempts 600

# 1. codec + world-action model on the clean demonstrations
train tc2 --bags "$DEMOS/train" "$DEMOS/train_b" --steps 4500 --codec-steps 1500
# 2. start-of-episode windows (history padded at rest): the first move must come from the images
train tc3 --bags "$DEMOS/train" "$DEMOS/train_b" --init-from "$WORK/tc2" --start-fraction 0.3 --lr 2e-4 \
  --steps 1500
# 3. the perturbed demonstrations added: recoveries
train tc4 --bags "$DEMOS/train" "$DEMOS/train_b" "$DEMOS/dart" --init-from "$WORK/tc3" --start-fraction 0.3 \
  --lr 2e-4 --steps 2000
echo "== done: $WORK/tc4"
