# Two commands do everything on a fresh machine without ROS: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
export AMENT_PREFIX_PATH := $(CURDIR)/$(VENV)$(if $(AMENT_PREFIX_PATH),:$(AMENT_PREFIX_PATH))
# Discovery kept on this machine; make demo runs on a DDS domain no other kairos_ros run holds
# (kairos-bringup --domain auto) unless ROS_DOMAIN_ID or DOMAIN is given; the tests claim their own.
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
DOMAIN ?= $(if $(ROS_DOMAIN_ID),$(ROS_DOMAIN_ID),auto)
EMBODIMENT ?= dual_arm
# The embedded default: kairos-nano, whose bundled weights were trained for ALOHA; other robots
# default to the extrapolate baseline (or BACKEND=kairos with your own weights in their profile).
BACKEND ?= $(if $(filter dual_arm aloha,$(EMBODIMENT)),kairos,extrapolate)
BAG ?= data/demo_transfer_cube
# make demo: a simulated ALOHA (gym-aloha's MuJoCo model) doing TASK closed loop, driven by the graph;
# the simulation runs at RTF x real time on /clock so a CPU model keeps up. make demo-bag replays BAG.
TASK ?= aloha_transfer_cube
SEED ?= 0
RTF ?= 0.5

.PHONY: setup demo demo-bag test test-fast bench clean

setup:
	@PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/setup.sh

demo: setup
	$(VENV)/bin/kairos-bringup --embodiment $(EMBODIMENT) --backend $(BACKEND) --sim $(TASK) --seed $(SEED) --real-time-factor $(RTF) --status --report-dir out --domain $(DOMAIN)

demo-bag: setup
	$(VENV)/bin/kairos-bringup --embodiment $(EMBODIMENT) --backend $(BACKEND) --bag $(BAG) --status --report-dir out --domain $(DOMAIN)

# Lint (ruff.toml), the import contracts (.importlinter), then every test; the 25 slowest are listed at the end of the output.
test: setup
	$(VENV)/bin/ruff check kairos_ros test launch scripts
	$(VENV)/bin/lint-imports
	$(VPY) -m pytest test -q -p no:cacheprovider --durations=25

# The unit floors only (no processes, no DDS, no simulator): under a minute.
test-fast: setup
	$(VENV)/bin/ruff check kairos_ros test launch scripts
	$(VENV)/bin/lint-imports
	$(VPY) -m pytest test/core test/model test/ops test/eval -q -p no:cacheprovider

bench: setup
	$(VENV)/bin/kairos-bench pipeline

clean:
	rm -rf build out .pytest_cache
