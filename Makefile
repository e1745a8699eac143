# Two commands for a new user: `make run` and `make test`. Everything else they need is installed here.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test lint bench-catalog bench-orders bench-coupons bench-settlement bench-campaigns bench-flash-sale bench-request-floor clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Groupshop needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

run: install
	$(BIN)/python -m api.devserver

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .

bench-catalog: install
	$(BIN)/python bench/catalog.py

bench-orders: install
	$(BIN)/python bench/orders.py

bench-coupons: install
	$(BIN)/python bench/coupons.py

bench-settlement: install
	$(BIN)/python bench/settlement.py

bench-campaigns: install
	$(BIN)/python bench/campaigns.py

bench-request-floor: install
	$(BIN)/python bench/request_floor.py

bench-flash-sale: install
	$(BIN)/python bench/flash_sale.py

clean:
	rm -rf $(VENV) .data
