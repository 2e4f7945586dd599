# One entry point for people and CI. `make demo` and `make check` work on a fresh machine:
# they install uv (from PyPI) when it is missing, then the locked environment.
UV := python3 -m uv
PY_DIRS := src tests bench

.PHONY: bootstrap demo check lint typecheck test docs bench

bootstrap:
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv>=0.4,<1"
	@$(UV) sync --frozen --quiet

demo: bootstrap
	$(UV) run sharewise demo

lint: bootstrap
	$(UV) run ruff check $(PY_DIRS)
	$(UV) run ruff format --check $(PY_DIRS)

typecheck: bootstrap
	$(UV) run mypy
	$(UV) run lint-imports

test: bootstrap
	$(UV) run pytest --cov --cov-branch --cov-report=term

check: lint typecheck
	$(UV) run sharewise law validate
	$(UV) run pytest --cov --cov-branch --cov-report=term

docs: bootstrap
	$(UV) run sharewise law docs docs/reference/rules

bench: bootstrap
	$(UV) run python bench/bench_engine.py
