# effnb: two commands do everything on a fresh machine (see README):
#   make course   -> opens JupyterLab on notebooks/      (make run-notebooks: headless, writes figures/)
#   make test     -> lint + every test + every notebook (nbval) + the browser test of the widgets
# Each creates .venv on first use. Torch is installed first, pinned, so that the wide range in
# pyproject.toml does not pull a 5 GB CUDA build here; GPU users: make TORCH_SPEC="torch" ...

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.effnb-installed
# The versions the stored notebooks were last executed and tested with (pip constraints; torch is
# pinned by TORCH_SPEC instead). make lock refreshes it.
CONSTRAINTS ?= constraints.txt
EXTRAS := course,test,deploy,scale,dev

# The allocator every process of the course starts with (effnb/allocator.py GLIBC_CONFIGURED,
# notebook 08): glibc keeps freed memory instead of trimming / unmapping it after every forward,
# so CPU timings are not a lottery over heap layouts. glibc reads these at start-up; other C
# libraries ignore them, and the harness prints what is in force with every comparison.
export MALLOC_TRIM_THRESHOLD_ = 1073741824
export MALLOC_MMAP_THRESHOLD_ = 33554432

.PHONY: course run-notebooks solutions test lint format venv clean-venv browser-deps lock check mutants

venv: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[$(EXTRAS)]"
	touch $(STAMP)

# Refresh constraints.txt: the newest versions pyproject.toml's ranges allow, installed into .venv
# and recorded. Then run make test and make run-notebooks, and commit the three together.
lock: $(STAMP)
	$(PY) -m pip install --quiet --upgrade -e ".[$(EXTRAS),book]"
	{ sed -n '1,4p' $(CONSTRAINTS); $(PY) -m pip freeze --exclude-editable | grep -viE '^(torch|nvidia-|triton)=='; } > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)
	touch $(STAMP)

course: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

run-notebooks: $(STAMP)
	$(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=900 notebooks/[0-9]*.ipynb

# The instructors' edition: every notebook with its exercises solved, executed, in build/solved/
# (solutions/NN_topic.py holds the answers; notebooks/ and figures/ are left untouched).
solutions: $(STAMP)
	$(PY) -m effnb.exercises.solutions --execute build/solved

# The contributors' quick loop (under a minute on 2 cores): lint, types and the unit tests, without
# the notebooks, the book, the browser or anything marked slow (tests/conftest.py SLOW_MODULES).
check: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) -m pytest -q -m "not slow and not browser" tests

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The browser test (tests/test_browser.py) drives Debian's chromium through Playwright from PyPI;
# nothing downloads a browser (never `playwright install`). As root, install it if missing.
browser-deps:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; \
	else \
		echo "browser test: /usr/bin/chromium is missing; install it with:"; \
		echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium"; \
		echo "  (without it the browser test is skipped, except under CI=true where it fails)"; \
	fi

# EFFNB_FIGURES: notebooks executed by the tests save their figures to a scratch folder, so a test
# run never rewrites figures/ (make run-notebooks does that).
test: lint browser-deps
	EFFNB_FIGURES=$$(mktemp -d) $(PY) -m pytest -q --durations=15 --nbval-lax tests notebooks

clean-venv:
	rm -rf $(VENV)

# Mutation testing (issue 16), not part of `make test`: mutmut 3.8 on the modules of
# [tool.mutmut] only_mutate, one at a time, results kept in mutants/ between runs (a killed
# mutant stays killed until its function changes; survivors are retried). One module:
# make mutants MODULE=effnb/costs.py. Scores only: $(PY) scripts/mutants.py --table
# Reviewed equivalent mutants: tests/mutants_equivalent.txt. About 55 min from scratch on 2 cores.
MODULE ?=
mutants: $(STAMP)
	$(PY) scripts/mutants.py $(MODULE)

# The course as a static site (issue 17): build/book/ from the stored notebooks, in course order,
# not executed, offline (book/build.py; the repository URL for launch links is in book/book.toml).
# make test builds it and loads every page in Chromium (tests/test_book.py, on that build).
BOOK_STAMP := $(VENV)/.effnb-book-installed

.PHONY: book book-figures nbdiff-setup

$(BOOK_STAMP): $(STAMP) pyproject.toml $(CONSTRAINTS)
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[$(EXTRAS),book]"
	touch $(BOOK_STAMP)

book: $(BOOK_STAMP)
	$(PY) book/build.py --out build/book

test: book
test: export EFFNB_BOOK_DIR = $(CURDIR)/build/book

# Rewrites figures/book-landing.png and figures/book-notebook.png (the README shows them).
book-figures: book
	EFFNB_BOOK_DIR=$(CURDIR)/build/book $(PY) -m pytest -q tests/test_book.py -k screenshots

# Readable notebook diffs, once per clone: `git diff` shows *.ipynb changes cell by cell through
# nbdime (.gitattributes names the driver; this defines it in .git/config, by absolute path so an
# activated venv is not needed). `git difftool --tool=nbdime FILE` opens the same diff in a browser.
nbdiff-setup: $(BOOK_STAMP)
	git config diff.jupyternotebook.command "$(abspath $(VENV))/bin/git-nbdiffdriver diff"
	git config difftool.nbdime.cmd "$(abspath $(VENV))/bin/git-nbdifftool diff \"\$$LOCAL\" \"\$$REMOTE\" \"\$$BASE\""
	@echo "nbdime: git diff now shows notebooks cell by cell in this clone (undo: git config --remove-section diff.jupyternotebook)"
