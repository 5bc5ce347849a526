# Chitram: the two commands a new user needs are `make run` and `make test`.
SHELL := /bin/bash
BACKEND := backend
UV ?= $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
HOST ?= 127.0.0.1
PORT ?= 8000
# `make cluster`: where its processes keep their data, and the port Caddy listens on.
CLUSTER_DIR ?= $(or $(TMPDIR),/tmp)/chitram-cluster
CLUSTER_PORT ?= 8080
# Coverage of app/ with a floor (pyproject's fail_under); `make test COV_ARGS=` runs a
# subset through PYTEST_ARGS without it.
COV_ARGS ?= --cov=app --cov-report=term-missing:skip-covered
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test install uv migrate lint typecheck bench vendor clean \
	cluster cluster-down cluster-status cluster-packages cluster-load

run: install ## install, migrate and serve the embedded shape on http://127.0.0.1:8000
	cd $(BACKEND) && $(UV) run --frozen chitram migrate
	cd $(BACKEND) && LOG_FORMAT=$${LOG_FORMAT:-console} $(UV) run --frozen chitram serve --host $(HOST) --port $(PORT)

test: install ## install and run the gates and the whole suite (CHITRAM_REQUIRE_SERVICES=1 fails on missing services)
	cd $(BACKEND) && $(UV) run --frozen ruff check .
	cd $(BACKEND) && $(UV) run --frozen ruff format --check .
	cd $(BACKEND) && $(UV) run --frozen mypy
	cd $(BACKEND) && $(UV) run --frozen lint-imports
	cd $(BACKEND) && $(UV) run --frozen pytest $(COV_ARGS) $(PYTEST_ARGS)

install: uv ## create backend/.venv from uv.lock
	cd $(BACKEND) && $(UV) sync --frozen

uv: ## bootstrap uv when the machine has none
	@command -v $(UV) >/dev/null 2>&1 || { \
	  echo "uv not found: installing it into ~/.local with pip"; \
	  python3 -m pip install --user --quiet uv || python3 -m pip install --user --quiet --break-system-packages uv; }

migrate: install
	cd $(BACKEND) && $(UV) run --frozen chitram migrate

bench: install ## the speed and memory benchmarks (see backend/bench/README.md)
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	cd $(BACKEND) && $(UV) run --frozen python -m bench.run_all

cluster: install cluster-packages ## the scaled-out shape on loopback: Caddy, 2 APIs, 2 workers, PG primary + replica, Redis, SeaweedFS
	cd $(BACKEND) && $(UV) run --frozen python -m cluster --dir $(CLUSTER_DIR) up --port $(CLUSTER_PORT)

cluster-down: ## stop every process `make cluster` started (by PID) and remove its folder
	cd $(BACKEND) && $(UV) run --frozen python -m cluster --dir $(CLUSTER_DIR) down

cluster-status:
	cd $(BACKEND) && $(UV) run --frozen python -m cluster --dir $(CLUSTER_DIR) status

cluster-load: ## the mixed load test and the four fault drills against the running cluster
	cd $(BACKEND) && $(UV) run --frozen python -m bench.mixed_load --cluster --cluster-dir $(CLUSTER_DIR) \
	  --drill api --drill worker --drill redis --drill replica $(LOAD_ARGS)

cluster-packages: ## Debian's caddy, redis-server and PostgreSQL server binaries, when missing
	@missing=(); \
	command -v caddy >/dev/null 2>&1 || missing+=(caddy); \
	command -v redis-server >/dev/null 2>&1 || missing+=(redis-server); \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing+=(postgresql); \
	if (( $${#missing[@]} )); then \
	  echo "installing $${missing[*]} (Debian packages)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq "$${missing[@]}"; \
	fi

vendor: ## fetch the pinned front-end files in backend/app/static/vendor again (needs npm)
	@set -e; tmp=$$(mktemp -d); cd $$tmp; \
	npm pack --silent swagger-ui-dist@5.35.0 redoc@2.5.4 htmx.org@2.0.11 thumbhash@0.1.1 >/dev/null; \
	mkdir s r h t; tar xzf swagger-ui-dist-5.35.0.tgz -C s; tar xzf redoc-2.5.4.tgz -C r; \
	tar xzf htmx.org-2.0.11.tgz -C h; tar xzf thumbhash-0.1.1.tgz -C t; \
	dest=$(CURDIR)/$(BACKEND)/app/static/vendor; \
	cp s/package/swagger-ui-bundle.js s/package/swagger-ui.css s/package/favicon-32x32.png \
	   s/package/LICENSE $$dest/swagger-ui-5.35.0/; \
	cp r/package/bundles/redoc.standalone.js r/package/LICENSE $$dest/redoc-2.5.4/; \
	cp h/package/dist/htmx.min.js h/package/LICENSE $$dest/htmx-2.0.11/; \
	cp t/package/thumbhash.js $$dest/thumbhash-0.1.1/; \
	rm -rf $$tmp; echo "vendored files refreshed under $$dest"

clean:
	rm -rf $(BACKEND)/.venv $(BACKEND)/.pytest_cache $(BACKEND)/.mypy_cache $(BACKEND)/.ruff_cache
