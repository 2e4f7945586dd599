"""Console output and error reporting shared by every CLI command module."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from sharewise.domain.errors import SharewiseError
from sharewise.wiring import Settings

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
state: dict[str, Any] = {"debug": False}

F = TypeVar("F", bound=Callable[..., Any])

StatePack = Annotated[
    Path | None,
    typer.Option(
        "--state-pack",
        help="A state law pack directory layered on the federal pack (or SHAREWISE_STATE_PACK).",
        file_okay=False,
    ),
]


def escape(text: str) -> str:
    """Escape Rich markup in text that comes from data."""
    return text.replace("[", r"\[")


def acting_user(user: str | None) -> str:
    """The user acting: --as, or SHAREWISE_USER; an error naming the option if neither is given."""
    import os

    from sharewise.domain.errors import InvalidDataError, Problem

    who = user or os.environ.get("SHAREWISE_USER")
    if not who:
        raise InvalidDataError("who is acting?", [Problem("--as", "give --as USER or set SHAREWISE_USER")])
    return who


def reading_user(user: str | None) -> str | None:
    """The user reading: --as, or SHAREWISE_USER, or nobody (enough while no users are registered)."""
    import os

    return user or os.environ.get("SHAREWISE_USER") or None


def settings_for(state_pack: Path | None) -> Settings:
    """Settings from the environment, with a --state-pack option taking precedence."""
    settings = Settings.from_env()
    return Settings(state_pack=state_pack, cache_dir=settings.cache_dir) if state_pack else settings


def handles_errors(fn: F) -> F:
    """Print sharewise errors one line per problem, and exit with the error's exit code."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SharewiseError as exc:
            if state["debug"]:
                raise
            err.print(f"[red]error[/] \\[{exc.code}]: {escape(exc.message)}")
            for problem in exc.problems:
                err.print(f"  {escape(str(problem))}")
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


class RichProgress:
    """Long steps as Rich spinners with elapsed time, on standard error."""

    def __init__(self) -> None:
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=False
        )

    @contextlib.contextmanager
    def step(self, description: str) -> Iterator[None]:
        task = self.progress.add_task(escape(description), total=None)
        try:
            yield
        finally:
            self.progress.update(task, total=1, completed=1)
