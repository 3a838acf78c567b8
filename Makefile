# Two entry points for a fresh machine: `make demo` and `make test`. Both create .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast validate docs install clean

# constraints.txt pins the exact set the suite is tested with; pyproject.toml declares ranges.
$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# setuptools says, for every editable install with a package-dir map, to mind same-named folders: nothing to act on
	PYTHONWARNINGS=ignore $(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/probe demo --out demo-out

# The unit and integration tests: everything but the held-out validation.
test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -m "not validation"

# The unit and known-answer tests alone: no trained fixture, no whole pipeline, no demo.
test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest -q -m "not integration and not validation"

# The held-out validation: the demo's planted answer (with and without labels) on a seed no tuning used, and the
# study's models at real scale. CI runs it after `make test`.
validate: $(STAMP)
	$(VENV)/bin/python -m pytest -q -m validation

# The reference pages (command line, registries, tables) are generated from the code, then the site is built.
docs: $(STAMP)
	$(PY) -m probe.app.docs docs/reference
	$(VENV)/bin/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) demo-out site
