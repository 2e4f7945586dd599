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


class InvalidDataError(SharewiseError):
    """Input data (a CSV, a dictionary, a consent, a questionnaire) is malformed or inconsistent."""

    code = "invalid_data"
    exit_code = 2


class StorageError(SharewiseError):
    """The store or the file system failed; the action did not happen."""

    code = "storage_failed"
    exit_code = 5


class NotPermittedError(SharewiseError):
    """The action needs a permission the law or the workflow has not given (e.g. a share without an approved determination)."""

    code = "not_permitted"
    exit_code = 6


class InvalidStateError(SharewiseError):
    """The action is not allowed in the current state of the record (e.g. signing a terminated agreement)."""

    code = "invalid_state"
    exit_code = 7


class IntegrityError(SharewiseError):
    """A signature, hash or chain check failed: the data was altered or is not what it claims to be."""

    code = "integrity_failed"
    exit_code = 8


class AccessDeniedError(SharewiseError):
    """The user's role or agency does not allow this action."""

    code = "access_denied"
    exit_code = 9


ERROR_CODES: dict[str, type[SharewiseError]] = {
    cls.code: cls
    for cls in (
        SharewiseError,
        InvalidRequestError,
        InvalidLawPackError,
        NotFoundError,
        InvalidDataError,
        StorageError,
        NotPermittedError,
        InvalidStateError,
        IntegrityError,
        AccessDeniedError,
    )
}
