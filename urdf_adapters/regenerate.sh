#!/usr/bin/env bash
# Regenerates urdf_adapters/<robot>/robot.urdf of every reference robot from the MJCF models that
# gym-aloha and gymnasium-robotics install (docs/architecture.md, convention 7: the files are derived, never
# edited by hand). test/tools/test_mjcf_to_urdf.py checks the committed files against a fresh run.
# Usage (inside the project's venv): urdf_adapters/regenerate.sh   (add --check to only compare)
set -euo pipefail
cd "$(dirname "$0")"
${PYTHON:-python} -m kairos_ros.tools.mjcf_to_urdf --all --out-dir . "$@"
