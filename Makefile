# The two set-up commands of the README: 'make run' and 'make test'.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test bench venv screenshots

$(BIN)/python:
	scripts/bootstrap.sh $(PYTHON) $(VENV)

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e . 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -c "import console" && touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]' 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -c "import console, pytest, hypothesis" && touch $@ $(VENV)/.installed-run

venv: $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/tbx

test: $(VENV)/.installed-test
	scripts/testenv.sh
	$(BIN)/pytest --durations=30

bench: $(VENV)/.installed-test
	scripts/testenv.sh
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

screenshots: $(VENV)/.installed-test
	scripts/testenv.sh
	$(BIN)/python scripts/export_screenshots.py
