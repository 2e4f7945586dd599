"""Upload forms read as they stream: text fields capped, files written straight into a private directory.

Nothing is written before the form's CSRF token is checked (the token field comes first in the
page's form, or in the X-CSRF-Token header); a file over its limit is deleted and the rest of it
skipped; the whole body is capped. Person files never pass through the system's temporary directory,
and a form that fails as it is read (refused, too large, malformed, cut short, or its client gone)
leaves none of its files behind: the caller's clean-up of the directory is then a second guard.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from sharewise.domain.errors import InvalidDataError, Problem
from sharewise.web.pages import check_csrf

HEADER_LIMIT = 16 * 1024  # the headers of one form part
MB = 1000 * 1000


def size_text(limit: int) -> str:
    """A size limit as the pages say it: in MB (decimal, as browsers and file managers show sizes), KiB or bytes."""
    if limit >= MB:
        return f"{limit // MB} MB"
    return f"{limit // 1024} KiB" if limit >= 1024 else f"{limit} bytes"


@dataclass(frozen=True)
class FileField:
    """A file the form may send: its name in the private directory, its size limit and its label in messages."""

    filename: str
    limit: int
    label: str


class UploadTooLarge(Exception):
    """The whole form is larger than the page accepts (the rest of it is not read)."""


@dataclass
class _Part:
    name: str = ""
    header_bytes: int = 0
    header_name: bytes = b""
    header_value: bytes = b""
    disposition: bytes = b""
    is_file: bool = False
    text: bytearray = field(default_factory=bytearray)
    path: Path | None = None
    handle: Any = None
    size: int = 0
    discard: bool = False


class StreamedForm:
    """A multipart form parsed as it arrives, into `fields` (text) and `files` (paths in the directory)."""

    def __init__(
        self,
        request: Request,
        directory: Path,
        files: Mapping[str, FileField],
        texts: Mapping[str, int],
        body_limit: int,
        max_parts: int = 20,
    ) -> None:
        self.request = request
        self.directory = directory
        self.file_fields = files
        self.text_limits = {"csrf_token": 256, **texts}
        self.body_limit = body_limit
        self.max_parts = max_parts
        self.fields: dict[str, str] = {}
        self.files: dict[str, Path] = {}
        self.too_large: list[str] = []
        self.csrf_ok = self._header_token_ok()
        self.part = _Part()
        self.count = 0
        self.ended = False  # the closing boundary arrived: the form was sent whole

    def oversized(self) -> list[tuple[str, str]]:
        """Each file that was over its limit (and not kept): its field, and the sentence that says so."""
        found = []
        for name in self.too_large:
            upload = self.file_fields[name]
            found.append((name, f"{upload.label} is larger than {size_text(upload.limit)}: it was not kept"))
        return found

    def flag(self, name: str) -> bool:
        """A checkbox's field: ticked (browsers send "on") or not."""
        return self.fields.get(name, "") in ("on", "yes", "true", "1")

    def _header_token_ok(self) -> bool:
        if not self.request.headers.get("x-csrf-token"):
            return False
        check_csrf(self.request, "")  # refuses a wrong header token
        return True

    async def read(self) -> None:
        """Read the whole form; AccessDeniedError (CSRF), InvalidDataError (malformed or cut short) or UploadTooLarge.

        On any failure, the client's disconnecting included, the files written so far are deleted before the
        error goes on: a half-read form keeps nothing, wherever the caller's directory is.
        """
        try:
            await self._read()
        except BaseException:
            self._remove_files()
            raise

    async def _read(self) -> None:
        _, params = parse_options_header(self.request.headers.get("content-type", ""))
        boundary = params.get(b"boundary")
        if not boundary:
            raise InvalidDataError("the form was not sent as a file upload (multipart/form-data)")
        parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_done,
                "on_part_data": self._data,
                "on_part_end": self._end,
                "on_end": self._ended,
            },
        )
        received = 0
        try:
            async for chunk in self.request.stream():
                received += len(chunk)
                if received > self.body_limit:
                    raise UploadTooLarge
                parser.write(chunk)
            parser.finalize()
        except MultipartParseError:
            raise InvalidDataError("the upload was cut short or is malformed; send the form again") from None
        if not self.csrf_ok:
            check_csrf(self.request, self.fields.get("csrf_token", ""))
        if not self.ended:
            # The parser does not say so itself: a body without its closing boundary lost its last part.
            raise InvalidDataError("the upload was cut short or is malformed; send the form again")

    def _ended(self) -> None:
        self.ended = True

    def _remove_files(self) -> None:
        if self.part.handle is not None:
            self.part.handle.close()
            self.part.handle = None
        if self.part.path is not None:
            self.part.path.unlink(missing_ok=True)
        for path in self.files.values():
            path.unlink(missing_ok=True)
        self.files.clear()

    def _begin(self) -> None:
        self.part = _Part()
        self.count += 1
        if self.count > self.max_parts:
            raise InvalidDataError("the form has more fields than this page sends")

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self.part.header_name += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self.part.header_value += data[start:end]

    def _count_header(self, size: int) -> None:
        self.part.header_bytes += size
        if self.part.header_bytes > HEADER_LIMIT:
            raise InvalidDataError("the upload is malformed: a part's headers are too long")

    def _header_end(self) -> None:
        if self.part.header_name.lower() == b"content-disposition":
            self.part.disposition = self.part.header_value
        self.part.header_name, self.part.header_value = b"", b""

    def _headers_done(self) -> None:
        _, options = parse_options_header(self.part.disposition)
        self.part.name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" not in options:
            return
        self.part.is_file = True
        if self.part.name not in self.file_fields or self.part.name in self.files:
            self.part.discard = True  # not a file this form sends
            return
        if not self.csrf_ok:
            # The token comes before the files in the page's form: a form without it writes nothing.
            check_csrf(self.request, self.fields.get("csrf_token", ""))
            self.csrf_ok = True
        self.part.path = self.directory / self.file_fields[self.part.name].filename
        self.part.handle = self.part.path.open("wb")

    def _data(self, data: bytes, start: int, end: int) -> None:
        part = self.part
        if not part.is_file:
            limit = self.text_limits.get(part.name, 0)
            if len(part.text) + end - start > limit:
                if part.name not in self.text_limits:
                    return  # a field this form does not send is not kept
                raise InvalidDataError(
                    "a form field is too long", [Problem(part.name[:40], f"at most {max(1, limit // 1024)} KiB")]
                )
            part.text += data[start:end]
            return
        if part.discard:
            return
        part.size += end - start
        if part.size > self.file_fields[part.name].limit:
            self.too_large.append(part.name)
            self._drop()
            return
        part.handle.write(data[start:end])

    def _drop(self) -> None:
        part = self.part
        if part.handle is not None:
            part.handle.close()
            part.handle = None
        if part.path is not None:
            part.path.unlink(missing_ok=True)
        part.discard = True

    def _end(self) -> None:
        part = self.part
        if not part.is_file:
            if part.name in self.text_limits:
                self.fields[part.name] = part.text.decode("utf-8", "replace")
                if part.name == "csrf_token" and not self.csrf_ok:
                    check_csrf(self.request, self.fields["csrf_token"])
                    self.csrf_ok = True
            return
        if part.discard:
            return
        part.handle.close()
        part.handle = None
        assert part.path is not None
        if part.size == 0:  # no file chosen: the browser sends an empty part
            part.path.unlink(missing_ok=True)
        else:
            self.files[part.name] = part.path
