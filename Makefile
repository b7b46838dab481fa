# Two commands that work on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile

# The figures in benchmarks/README.md: whole models against onnxruntime, then per-op dispatch.
bench: $(STAMP)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMRT_NUM_THREADS=2 $(PY) benchmarks/bench_models.py --batches 1,8 --repeats 20
	$(PY) benchmarks/bench_dispatch.py

clean:
	rm -rf $(VENV) build *.egg-info out
