# Both targets set themselves up on a fresh machine: they create .venv and install the project.
VENV  := .venv
BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium
SUDO  := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: check test bench clean

$(STAMP): pyproject.toml model_checker/_codec.c model_checker/_fingerprint.c model_checker/_visited.c pot_impl/training/_rounding.c
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: the local 2.13.0 file is a CPU build; a looser pin pulls GBs of CUDA wheels.
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev,ray]'
	touch $(STAMP)

# The report's browser test drives Debian's chromium (Playwright never downloads a browser). A rule
# of its own, so a machine that lost chromium after the install above gets it back too.
$(CHROMIUM):
	$(SUDO) apt-get update
	$(SUDO) apt-get install -y chromium

check: $(STAMP)
	$(BIN)/pot check default

test: $(STAMP) $(CHROMIUM)
	$(BIN)/pytest
	$(BIN)/mypy
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all
	$(BIN)/python -m benchmarks.document

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
