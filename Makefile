# Two commands for a new user: `make dev` brings the gateway up, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: install dev test lint format bench-ussd bench-sms bench-campaign bench-fanout bench-growth bench-console bench-outage drill drill-short screenshots clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

## Bring everything up on embedded defaults: SQLite, embedded Redis, provider emulator, worker, web app.
dev: install
	$(BIN)/flask --app wsgi dev

## Lint, then the whole test suite (SQLite, and PostgreSQL when reachable), against a real Redis.
test: install
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench-ussd: install
	$(BIN)/python bench/ussd.py

bench-sms: install
	$(BIN)/python bench/sms.py

bench-campaign: install
	$(BIN)/python bench/campaign.py

## Fan-out alone of a 100,000 and a 1,000,000-recipient campaign on PostgreSQL (a few minutes).
bench-fanout: install
	$(BIN)/python bench/campaign.py --recipients 1000000

## Console and dispatcher queries at 1 and 10 million messages on PostgreSQL (the fill takes a quarter of an hour).
bench-growth: install
	$(BIN)/python bench/growth.py

bench-console: install
	$(BIN)/python bench/console.py

bench-outage: install
	$(BIN)/python bench/outage.py

## The failover drill on this machine (HAProxy, two web nodes, two workers, Redis with Sentinel, PostgreSQL).
drill: install
	$(BIN)/python drill/run.py

## The same in a few minutes (CI): shorter phases, a 20 s provider outage.
drill-short: install
	$(BIN)/python drill/run.py --short

## Photograph the console's main pages at 1280 and 800 pixels wide into docs/screenshots/ (needs chromium).
screenshots: install
	SCREENSHOTS_DIR=docs/screenshots REQUIRE_BROWSER=1 $(BIN)/pytest -q tests/browser/test_screenshots.py -k sqlite

clean:
	rm -rf var .pytest_cache .ruff_cache .hypothesis
