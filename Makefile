# Quick start: `make demo` and `make test` each set everything up from scratch.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TEST_WORKERS ?= 2
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint setup clean bench docs docs-serve gallery FORCE

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples docs/hooks

test: $(STAMP) lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) tests

demo: $(STAMP)
	$(BIN)/icnn demo --out runs/demo

bench: $(STAMP)
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/init_comparison.py
	$(BIN)/python benchmarks/inference.py

# Documentation site (mkdocs.yml, docs/): the gallery's figures are made here, never committed.
# ICNN_GALLERY_FAST=1 runs the examples at reduced size (CI) into their own folder, so a full build
# never reuses them; a figure is remade when its script changes, the init plot when INIT_FLAGS do.
DOCS_STAMP := $(VENV)/.docs-installed
GALLERY_OUT ?= $(if $(filter 1,$(ICNN_GALLERY_FAST)),build/gallery-fast,build/gallery)
INIT_FLAGS ?= $(if $(filter 1,$(ICNN_GALLERY_FAST)),--seeds 2 --steps 200,--seeds 3 --steps 600)
INIT_STAMP := $(GALLERY_OUT)/.init-flags
FIGURES := $(patsubst examples/%.py,$(GALLERY_OUT)/%.png,$(wildcard examples/*.py)) \
	$(GALLERY_OUT)/init_comparison.png

$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e ".[dev,docs]"
	touch $(DOCS_STAMP)

$(GALLERY_OUT)/%.png: examples/%.py $(STAMP)
	ICNN_GALLERY_OUT=$(GALLERY_OUT) OMP_NUM_THREADS=1 $(BIN)/python $<

# rewritten only when the flags differ from the recorded ones (its date then remakes the plot)
$(INIT_STAMP): FORCE
	@mkdir -p $(GALLERY_OUT)
	@echo '$(INIT_FLAGS)' | cmp -s - $@ || echo '$(INIT_FLAGS)' > $@

$(GALLERY_OUT)/init_comparison.png: benchmarks/init_comparison.py $(INIT_STAMP) $(STAMP)
	@mkdir -p $(GALLERY_OUT)
	OMP_NUM_THREADS=1 $(BIN)/python $< $(INIT_FLAGS) --threads 1 --plot $@

gallery: $(FIGURES)

FORCE:

docs: $(DOCS_STAMP) gallery
	ICNN_GALLERY_OUT=$(GALLERY_OUT) NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: $(DOCS_STAMP) gallery
	ICNN_GALLERY_OUT=$(GALLERY_OUT) NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

clean:
	rm -rf $(VENV) runs .pytest_cache site build/gallery build/gallery-fast $(GALLERY_OUT)
