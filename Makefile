# The two commands of README.md:
#   make reproduce   create .venv if needed, install, run the main job (tinysm reproduce)
#   make test        create .venv if needed, install, run the test suite
# The environment is rebuilt only when the dependency lists of pyproject.toml change (their hash is
# stamped in .venv), so repeated runs reuse it; a fresh clone builds it from scratch.

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
DEPS_HASH := $(shell $(PYTHON) -c "import hashlib, json, tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print(hashlib.sha256(json.dumps([p['dependencies'], p.get('optional-dependencies'), p.get('scripts')]).encode()).hexdigest()[:16])")
STAMP := $(VENV)/.tinysm-deps-$(DEPS_HASH)
REPRODUCE_ARGS ?=
PYTEST_ARGS ?=

.PHONY: venv reproduce test clean-venv

venv: $(STAMP)

$(STAMP):
	@echo "[tinysm] creating the environment in $(VENV) (dependencies changed or missing)"
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	# torch first, pinned to the tested build (pip takes it from the local wheel store when there is one)
	$(VPY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(VPY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

reproduce: venv
	$(VENV)/bin/tinysm reproduce $(REPRODUCE_ARGS)

test: venv
	$(VPY) -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
