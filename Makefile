# One entry point for people and CI. `make demo` and `make check` work on a fresh machine:
# they install uv (from PyPI) when it is missing, then the locked environment.
UV := python3 -m uv
PY_DIRS := src tests bench

.PHONY: bootstrap system-deps demo check lint typecheck test docs bench

bootstrap:
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv>=0.4,<1"
	@$(UV) sync --frozen --quiet

# Debian's Chromium drives the browser tests (never a downloaded browser build); DejaVu gives the
# PDFs a Unicode font (engines/pdf_fonts.py).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then (apt-get install -y -qq chromium >/dev/null 2>&1 || \
			(apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null)); \
		else echo "Chromium is needed for the browser tests: sudo apt-get install chromium" >&2; exit 1; fi; }
	@[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || { \
		if [ "$$(id -u)" = 0 ]; then (apt-get install -y -qq fonts-dejavu-core >/dev/null 2>&1 || \
			(apt-get update -qq >/dev/null && apt-get install -y -qq fonts-dejavu-core >/dev/null)); \
		else echo "DejaVu fonts are needed for PDFs: sudo apt-get install fonts-dejavu-core" >&2; exit 1; fi; }

demo: bootstrap
	$(UV) run sharewise demo

lint: bootstrap
	$(UV) run ruff check $(PY_DIRS)
	$(UV) run ruff format --check $(PY_DIRS)

typecheck: bootstrap
	$(UV) run mypy
	$(UV) run lint-imports --no-cache

test: bootstrap system-deps
	$(UV) run pytest --cov --cov-branch --cov-report=term

check: system-deps lint typecheck
	$(UV) run sharewise law validate
	$(UV) run pytest --cov --cov-branch --cov-report=term

docs: bootstrap
	$(UV) run sharewise law docs docs/reference/rules

bench: bootstrap
	$(UV) run python bench/bench_engine.py
