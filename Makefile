# The two set-up commands of the README: `make demo` (the main job) and `make test` (the suite).
# Each creates its own virtual environment in .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install -q -e '.[test,hf,pack,postgres,plot,serve,otel]'
	touch $@

DEMO_TASK := How does tokenpilot resolve a model's context window and prices from env, config and bundled data?

# The main job: pack this repository for a task into 12k tokens (exact, gpt-4o), then show the top of it.
demo: $(VENV)/.installed
	$(BIN)/tokenpilot pack . --task "$(DEMO_TASK)" --budget 12k -o $(VENV)/demo-pack.xml --manifest $(VENV)/demo-manifest.json
	@head -n 12 $(VENV)/demo-pack.xml
	@echo "…  (full text: $(VENV)/demo-pack.xml, manifest: $(VENV)/demo-manifest.json)"

test: $(VENV)/.installed
	$(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy src

clean:
	rm -rf $(VENV)
