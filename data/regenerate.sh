#!/usr/bin/env bash
# Rebuilds the bundled demo bag data/demo_dual_arm (design.md convention 7): ALOHA dual arm, head +
# two wrist cameras (rgb8 128x96 at 10 Hz; perception resizes them into the robotwin layout),
# joint states and recorded commands at 50 Hz, 8 s, MCAP with zstd chunks. Deterministic.
# Usage (inside the project's venv): data/regenerate.sh
set -euo pipefail
cd "$(dirname "$0")"
${PYTHON:-python} -m kairos_ros.tools.make_bag --force demo_dual_arm --storage mcap --embodiment aloha \
  --cameras 3 --duration 8 --camera-rate 10 --joint-rate 50 --width 128 --height 96 --seed 0 \
  --start-time 1700000000.0
du -sh demo_dual_arm
