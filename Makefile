# session-buddy: every target sets itself up (creates .venv and installs the package).
# Dependencies come from requirements.lock (exact versions with hashes: what CI tested);
# `make lock` re-resolves it from pyproject.toml.
# Another interpreter gets a venv of its own: `make test PYTHON=python3.13 VENV=.venv313`
# (CI runs the suite on 3.11 and on 3.13).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Node packages the tests drive (the TypeScript SDK client, an OpenID provider, …): one
# directory per purpose under testkit/node/, each with its package-lock.json, installed
# with `npm ci` from the npm registry.
NODE_DIRS   := $(patsubst %/package.json,%,$(wildcard testkit/node/*/package.json))
NODE_STAMPS := $(addsuffix /node_modules/.installed,$(NODE_DIRS))
# The conformance suite (with its own Node.js 22, ~240 MB) is for `make conformance` only.
CONFORMANCE_STAMP := testkit/node/conformance/node_modules/.installed
TEST_NODE_STAMPS  := $(filter-out $(CONFORMANCE_STAMP),$(NODE_STAMPS))

.PHONY: test demo lint format bench fuzz stress interop conformance lock clean node

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

testkit/node/%/node_modules/.installed: testkit/node/%/package.json testkit/node/%/package-lock.json
	cd testkit/node/$* && npm ci --no-audit --no-fund --loglevel=error
	touch $@

node: $(NODE_STAMPS)

test: $(STAMP) $(TEST_NODE_STAMPS)
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/python examples/jwt_auth_demo.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m benchmarks

fuzz: $(STAMP)
	SESSION_BUDDY_FUZZ_EXAMPLES=100000 $(BIN)/python -m pytest -q tests/auth/test_differential.py

stress: $(STAMP)
	$(BIN)/python -m stress

# The official MCP conformance suite (npm @modelcontextprotocol/conformance, under the
# Node.js 22 npm installs beside it) against a real server; testkit/conformance.py says
# which scenarios run and why the others do not.
conformance: $(STAMP) $(CONFORMANCE_STAMP)
	$(BIN)/python -m testkit.conformance

# The released ecosystem (mcp-common's service tokens and Mahavishnu's signed messages, as
# Mahavishnu 0.14 ships them) against our code and server. Not part of `make test`: it
# downloads the wheels from PyPI. Their package __init__s need Python 3.13 and far more,
# so only mcp_common/auth and mahavishnu/session_buddy/auth.py are unpacked, beside stand-ins.
MCP_COMMON_VERSION := 0.19.1
MAHAVISHNU_VERSION := 0.14.0
interop: $(STAMP)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(BIN)/python -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.13 \
		mcp-common==$(MCP_COMMON_VERSION) mahavishnu==$(MAHAVISHNU_VERSION) -d "$$tmp/wheel" && \
	$(BIN)/python -m testkit.released "$$tmp/site" "$$tmp"/wheel/mcp_common-*.whl \
		"$$tmp"/wheel/mahavishnu-*.whl && \
	PYTHONPATH="$$tmp/site" $(BIN)/python -c \
		"import mcp_common.auth.core, mahavishnu.session_buddy.auth" && \
	PYTHONPATH="$$tmp/site" $(BIN)/python -m pytest -q -p no:cacheprovider tests/interop

# One lock for every supported Python and platform (--universal: markers, not a resolution
# for one interpreter), so the same hashes install on 3.11 and 3.13.
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --universal \
		--python-version 3.11 --index-url https://pypi.org/simple -o requirements.lock

clean:
	rm -rf $(VENV) .venv313 .pytest_cache .ruff_cache .hypothesis build dist *.egg-info testkit/node/*/node_modules
