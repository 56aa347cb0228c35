# `make demo`: set up and run RefineBot on the sample MCQs with the embedded CPU model.
# `make test`: set up and run the whole test suite (unit + the real embedded server).
# `make lock`: refresh requirements-lock.txt (the exact versions `make setup` installs) from pyproject.toml.
# `make docs`: build the documentation site into site/ (warnings are errors).
PY := .venv/bin/python

.PHONY: setup demo test unit bench lint clean lock docs

setup:
	bash scripts/setup.sh

demo: setup
	$(PY) -m rolegraph run refinebot --input examples/data/microscopy_mcqs.jsonl --seeds 0,1 --out out/refinebot-results.jsonl

test: setup
	$(PY) -m pytest

unit: setup
	$(PY) -m pytest tests/unit

bench: setup
	$(PY) benchmarks/client_overhead.py

lock:
	bash scripts/lock.sh

docs: setup
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

lint:
	$(PY) -m ruff check rolegraph tests benchmarks
	$(PY) -m mypy

clean:
	rm -rf .venv out .pytest_cache
