"""The one error tree of sharewise, with stable codes and located problems."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One problem found while validating input, with where it was found."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class SharewiseError(Exception):
    """Root of every error sharewise raises on purpose."""

    code = "sharewise_error"
    exit_code = 1

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems: list[Problem] = list(problems or [])


class InvalidRequestError(SharewiseError):
    """A sharing request is malformed or uses ids the vocabulary does not know."""

    code = "invalid_request"
    exit_code = 2


class InvalidLawPackError(SharewiseError):
    """A law pack file is malformed, inconsistent or uses unknown ids."""

    code = "invalid_law_pack"
    exit_code = 3


class NotFoundError(SharewiseError):
    """A named thing (rule, authority, file) does not exist."""

    code = "not_found"
    exit_code = 4


ERROR_CODES: dict[str, type[SharewiseError]] = {
    cls.code: cls for cls in (SharewiseError, InvalidRequestError, InvalidLawPackError, NotFoundError)
}
