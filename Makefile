# `make demo` and `make test` do all the set-up on a fresh machine with Python 3.11, make and pip.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
SUDO := $(shell [ "$$(id -u)" = 0 ] && echo "" || (command -v sudo >/dev/null && echo "sudo -n"))

.PHONY: install demo test lint format system-packages bench clean bench-dispatch bench-latency \
	bench-replay bench-layers bench-district

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Whistle needs Python 3.11, found " + sys.version' 
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

# Debian packages the tests use: chromium for the browser tests (with a CJK font, so screenshots
# show Chinese), mosquitto so the tests run the broker with the project's own config, redis-server
# so the tests start a Redis of their own when REDIS_URL is unset or does not answer, haproxy to
# check its configuration (and for bench-district's proxy). Installed where the machine allows
# (root or sudo).
system-packages:
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto"; \
	command -v redis-server >/dev/null || [ -x /usr/bin/redis-server ] || missing="$$missing redis-server"; \
	[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing="$$missing fonts-wqy-microhei"; \
	command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null && { [ "$$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then \
	    echo "installing$$missing with apt"; \
	    $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "note:$$missing not installed and apt is not available to this user; the tests that need them will skip"; \
	  fi; \
	fi

demo: install
	$(BIN)/whistle demo

# Tests close database connections after use (CONN_MAX_AGE=0) so the test database can be
# dropped at the end while worker threads of the tests have come and gone.
test: install system-packages
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	CONN_MAX_AGE=0 $(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) *.egg-info test-artifacts .pytest_cache .ruff_cache

# Ingest benchmark (docs/benchmarks.md): `whistle ingest` against a bare MQTT client draining the
# same backlog from the project's Mosquitto; needs PostgreSQL (DATABASE_URL's server, default
# local) and mosquitto. Reports figures and targets; exits 0 whether the targets are met or not.
# The engine: WHISTLE_BENCH_DB=postgresql (default: DATABASE_URL's server) or
# WHISTLE_BENCH_DB=timescaledb (a cluster of the benchmark's own with TimescaleDB preloaded,
# initdb'd once and kept, its log in test-artifacts/), e.g.
# `WHISTLE_BENCH_DB=timescaledb make bench-ingest`; the output's "# database:" line says which.
.PHONY: bench-ingest
bench-ingest: install
	$(BIN)/python -m bench.ingest --suite

# Officer's whistle request → summons frame on each department's console websocket (real
# daphne, Redis channel layer, PostgreSQL): 200 whistles to 5 departments.
bench-dispatch: install
	$(BIN)/python -m bench.dispatch --whistles 200 --departments 5
	$(BIN)/python -m bench.escalation --summonses 150

# MQTT camera event → alert row in a real chromium's DOM under 2,000 sensor messages/s, and the
# fan-out of every alert to 1,000 board websockets on one daphne process (Mosquitto, ingest,
# daphne, Redis, PostgreSQL, chromium; a few minutes). Needs mosquitto and chromium.
bench-latency: install
	$(BIN)/python -m bench.latency

# A supervisor's waits on a generated year of one township (~10 million readings, 20,000
# incidents, one with a 10,000-entry timeline, in its own database whistle_bench_replay, made
# once in about a minute and a half and kept): the timeline page, a replay frame, the 30-day
# department table (Django's test client, PostgreSQL). Reports; exits 0 whether met or not.
# WHISTLE_BENCH_DB=timescaledb runs it on TimescaleDB hypertables (as bench-ingest; the year is
# generated once into that cluster too, old chunks compressed); default postgresql.
bench-replay: install
	$(BIN)/python -m bench.replay

# The channel layer at district scale: channels-redis' core layer against its pub/sub layer for
# the boards' fan-out across two `whistle serve` processes (30 townships × 2 boards and 1,000
# sockets on one township; a serve process SIGKILLed; Redis down 10 s and back empty), each
# layer from the same known state, in one run (Redis of its own, daphne, PostgreSQL; about
# eight minutes). Reports both and which is kept; exits 0 either way.
bench-layers: install
	$(BIN)/python -m bench.layers

# A simulated district (30 townships × 1,000 sensors and 50 cameras, 3,000 msg/s) on 2 serve
# behind haproxy, 2 ingest on one shared subscription, 2 workers, Redis, Mosquitto and
# TimescaleDB (WHISTLE_BENCH_DB=postgresql for the machine's PostgreSQL): steady rate stored,
# alert → board on 60 boards, SIGKILL of an ingest and of a serve. 5–10 minutes. Reports;
# exits 0 whether the targets are met or not.
bench-district: install system-packages
	$(BIN)/python -m bench.district
