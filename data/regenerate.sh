#!/usr/bin/env bash
# Rebuilds the bundled demo bags.
# data/demo_transfer_cube: one demonstration of the simulated ALOHA transfer-cube task by its scripted
# expert (seed 9000: held out from the training demonstrations, seeds 1000+ and 30000+), as kairos-sim
# records it (cameras 320x240, the simulated cameras' size).
# data/demo_dual_arm (synthetic): ALOHA dual arm, head +
# two wrist cameras (rgb8 128x96 at 10 Hz; perception resizes them into the robotwin layout),
# joint states and recorded commands at 50 Hz, 8 s, MCAP with zstd chunks. Deterministic.
# Usage (inside the project's venv): data/regenerate.sh
set -euo pipefail
cd "$(dirname "$0")"
${PYTHON:-python} -m kairos_ros.tools.make_bag --force demo_dual_arm --storage mcap --embodiment aloha \
  --cameras 3 --duration 8 --camera-rate 10 --joint-rate 50 --width 128 --height 96 --seed 0 \
  --start-time 1700000000.0
du -sh demo_dual_arm
rm -rf demo_transfer_cube.tmp
${PYTHON:-python} -m kairos_ros.tools.sim_cli record --task aloha_transfer_cube --episodes 1 --seed 9000 \
  --quiet demo_transfer_cube.tmp
rm -rf demo_transfer_cube && mv demo_transfer_cube.tmp/episode_009000 demo_transfer_cube && rm -rf demo_transfer_cube.tmp
du -sh demo_transfer_cube
