# The two commands of the README: `make up` runs the product, `make test` tests it.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python

.PHONY: up install test quality clean-venv

up: install
	$(VENV)/bin/pystrument up

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml sdk/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e './sdk[fast]' -e '.[dev]'
	touch $@

test:
	./run_tests.sh install-deps
	./run_tests.sh all

quality: install
	./run_tests.sh quality

clean-venv:
	rm -rf $(VENV)
