# moto-edge-coach: every user-facing job is one make target. `make help` lists them.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

BOARD ?= esp32dev
PORT ?=
BAUD ?= 921600
TARGET ?= $(if $(PORT),serial,sil)
HIL_FRAMES ?= 400
RUN ?= demo
PRESET ?= default
PYTEST_ARGS ?=

.PHONY: help setup demo test firmware flash sil qemu hil models bench lock clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 12

setup: ## install Debian packages (as root) and the pinned .venv; idempotent
	@host/requirements/setup.sh

demo: setup ## the main job: data -> BC -> PPO -> int8 -> C -> SIL firmware -> coached lap -> summary
	$(BIN)/motocoach demo --run $(RUN) --preset $(PRESET)

test: setup ## run every test (unit, C core, bit-exactness, SIL HIL); what CI runs
	@$(PY) -m pytest -q -ra $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests; that is a failure" >&2; exit 1; fi; exit $$rc

firmware: setup ## build the ESP32 firmware with PlatformIO: make firmware BOARD=esp32dev (needs PlatformIO's registry)
	@$(PY) -m motocoach.pio_preflight firmware --pio $(BIN)/pio
	cd firmware && $(abspath $(BIN))/pio run -e $(BOARD)

flash: setup ## flash a board: make flash BOARD=esp32dev PORT=/dev/ttyUSB0
	@test -n "$(PORT)" || { echo "flash: give PORT=/dev/ttyUSB0 (or your serial port)" >&2; exit 2; }
	@$(PY) -m motocoach.pio_preflight firmware --pio $(BIN)/pio
	cd firmware && $(abspath $(BIN))/pio run -e $(BOARD) -t upload --upload-port $(PORT)

sil: ## build the SIL firmware (host gcc, POSIX HAL, UART on a pty)
	$(MAKE) -C firmware sil

qemu: ## build the QEMU rv32imc firmware image and print its section sizes
	$(MAKE) -C firmware qemu

hil: setup ## HIL suite: make hil | make hil TARGET=qemu | make hil PORT=/dev/ttyUSB0
	$(PY) -m pytest hil_tests -q -ra --target $(TARGET) $(if $(PORT),--port $(PORT)) --baud $(BAUD) \
	  --hil-frames $(HIL_FRAMES) --hil-report runs/hil-$(TARGET) $(PYTEST_ARGS)

models: setup ## regenerate the default model's int8 file, C engine data, manifest and C headers
	$(BIN)/motocoach schema c-headers
	$(BIN)/motocoach models rebuild

bench: setup ## run every benchmark, write bench/results/*.json and print a table
	$(PY) -m pytest bench -q -p no:randomly --benchmark-disable-gc $(PYTEST_ARGS); \
	rc=$$?; $(PY) bench/table.py; exit $$rc

# Keeps every existing pin and resolves only what is new; `make lock UPGRADE=1` re-resolves everything.
lock: ## re-freeze host/requirements/constraints.txt from host/requirements/base.txt in a scratch venv
	cp host/requirements/constraints.txt .constraints-previous.txt
	rm -rf .venv-lock && python3 -m venv .venv-lock && .venv-lock/bin/pip install -q torch==2.13.0 \
	  && .venv-lock/bin/pip install -q -r host/requirements/base.txt $(if $(UPGRADE),,-c .constraints-previous.txt) \
	  && .venv-lock/bin/pip install -q --no-deps -r host/requirements/nodeps.txt \
	  && { echo "# Frozen by \`make lock\` from host/requirements/base.txt (pip freeze of a clean venv). Do not edit by hand."; \
	       .venv-lock/bin/pip freeze --exclude-editable | sed 's/+cpu$$//'; } > host/requirements/constraints.txt \
	  && rm -rf .venv-lock .constraints-previous.txt

clean: ## remove build outputs (keeps .venv and runs/)
	$(MAKE) -C firmware clean || true
	rm -rf build .pytest_cache
