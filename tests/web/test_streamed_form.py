"""StreamedForm on its own: what it keeps, what it refuses, and that a form which fails leaves no file behind."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi import Request
from starlette.requests import ClientDisconnect

from sharewise.domain.errors import AccessDeniedError, InvalidDataError
from sharewise.web.streamed_form import HEADER_LIMIT, MB, FileField, StreamedForm, UploadTooLarge, size_text

TOKEN = "the-session-token"
BOUNDARY = "sharewise-test-boundary"
FILES = {
    "doc": FileField("doc.txt", 100, "The document"),
    "extra": FileField("extra.txt", 100, "The extra file"),
}
TEXTS = {"note": 20, "tick": 8}

Part = tuple[str, bytes] | tuple[str, bytes, str]  # (name, content) or (name, content, file name)


def multipart(parts: Sequence[Part], boundary: str = BOUNDARY, close: bool = True) -> bytes:
    """A multipart/form-data body as a browser sends it; without its closing boundary when close is False."""
    out = b""
    for part in parts:
        name, content = part[0], part[1]
        disposition = f'form-data; name="{name}"' + (f'; filename="{part[2]}"' if len(part) == 3 else "")
        kind = "Content-Type: application/octet-stream\r\n" if len(part) == 3 else ""
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n{kind}\r\n".encode() + content + b"\r\n"
    return out + (f"--{boundary}--\r\n".encode() if close else b"")


def request(
    chunks: Sequence[bytes],
    content_type: str = f"multipart/form-data; boundary={BOUNDARY}",
    header_token: str | None = None,
    disconnect: bool = False,
) -> Request:
    """A request whose body arrives in these chunks; with disconnect, the client goes away after the last one."""
    messages: list[dict[str, Any]] = [{"type": "http.request", "body": c, "more_body": True} for c in chunks]
    if disconnect:
        messages.append({"type": "http.disconnect"})
    else:
        messages.append({"type": "http.request", "body": b"", "more_body": False})

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    headers = [(b"content-type", content_type.encode())]
    if header_token is not None:
        headers.append((b"x-csrf-token", header_token.encode()))
    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers, "session": {"csrf": TOKEN}}
    return Request(scope, receive)


def read(req: Request, directory: Path, body_limit: int = 10_000, max_parts: int = 20) -> StreamedForm:
    form = StreamedForm(req, directory, FILES, TEXTS, body_limit, max_parts)
    asyncio.run(form.read())
    return form


def left(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# What it keeps -------------------------------------------------------------------------------------


def test_the_token_then_the_files_keeps_the_files_and_the_known_texts(tmp_path: Path) -> None:
    body = multipart(
        [
            ("csrf_token", TOKEN.encode()),
            ("note", "café".encode()),
            ("tick", b"on"),
            ("other", b"not a field of this form"),
            ("doc", b"the document", "doc.pdf"),
            ("extra", b"", ""),  # a file input left empty
        ]
    )
    form = read(request([body[:50], body[50:]]), tmp_path)
    assert form.fields == {"csrf_token": TOKEN, "note": "café", "tick": "on"}
    assert form.files == {"doc": tmp_path / "doc.txt"} and form.too_large == []
    assert (tmp_path / "doc.txt").read_bytes() == b"the document"  # named by the form, never by the client
    assert left(tmp_path) == ["doc.txt"]
    assert form.flag("tick") and not form.flag("note") and not form.flag("absent")


def test_a_valid_header_token_admits_files_without_the_form_token(tmp_path: Path) -> None:
    form = read(request([multipart([("doc", b"x", "a")])], header_token=TOKEN), tmp_path)
    assert form.files == {"doc": tmp_path / "doc.txt"}


def test_a_file_field_sent_twice_or_unknown_is_not_kept(tmp_path: Path) -> None:
    body = multipart(
        [("csrf_token", TOKEN.encode()), ("doc", b"first", "a"), ("doc", b"second", "b"), ("other", b"x", "c")]
    )
    form = read(request([body]), tmp_path)
    assert form.files == {"doc": tmp_path / "doc.txt"} and (tmp_path / "doc.txt").read_bytes() == b"first"
    assert left(tmp_path) == ["doc.txt"]


def test_a_file_over_its_limit_is_deleted_and_the_rest_of_the_form_is_read(tmp_path: Path) -> None:
    body = multipart(
        [("csrf_token", TOKEN.encode()), ("doc", b"x" * 101, "big"), ("extra", b"small", "s"), ("note", b"after")]
    )
    form = read(request([body[:150], body[150:]]), tmp_path)
    assert form.too_large == ["doc"] and form.files == {"extra": tmp_path / "extra.txt"}
    assert form.fields["note"] == "after" and left(tmp_path) == ["extra.txt"]
    assert form.oversized() == [("doc", "The document is larger than 100 bytes: it was not kept")]
    exactly = read(request([multipart([("csrf_token", TOKEN.encode()), ("doc", b"x" * 100, "a")])]), tmp_path)
    assert exactly.too_large == [] and (tmp_path / "doc.txt").stat().st_size == 100  # the limit itself is allowed
    assert exactly.oversized() == []


def test_limits_are_said_in_the_unit_people_read() -> None:
    said = [size_text(n) for n in (50 * MB, MB, MB - 1, 64 * 1024, 1024, 1023, 0)]
    assert said == ["50 MB", "1 MB", "976 KiB", "64 KiB", "1 KiB", "1023 bytes", "0 bytes"]


# Refusals: nothing is written, or what was written is deleted -------------------------------------


def test_a_file_before_the_token_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    body = multipart([("doc", b"person records", "a"), ("csrf_token", TOKEN.encode())])
    with pytest.raises(AccessDeniedError, match="did not come from this site"):
        read(request([body]), tmp_path)
    assert left(tmp_path) == []


def test_a_wrong_or_missing_token_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    forms: list[list[Part]] = [
        [("csrf_token", b"forged"), ("doc", b"person records", "a")],
        [("note", b"no token"), ("tick", b"on")],  # no file: refused at the end of the form
        [],
    ]
    for parts in forms:
        with pytest.raises(AccessDeniedError):
            read(request([multipart(parts)]), tmp_path)
        assert left(tmp_path) == []
    with pytest.raises(AccessDeniedError):  # a wrong header token: refused before the body is read
        StreamedForm(request([b""], header_token="forged"), tmp_path, FILES, TEXTS, 10_000)


def test_a_form_not_sent_as_multipart_is_refused(tmp_path: Path) -> None:
    for content_type in ("application/x-www-form-urlencoded", "multipart/form-data", ""):
        with pytest.raises(InvalidDataError, match=r"not sent as a file upload \(multipart/form-data\)"):
            read(request([f"csrf_token={TOKEN}".encode()], content_type=content_type), tmp_path)
    assert left(tmp_path) == []


def test_a_body_over_the_limit_stops_reading_and_keeps_no_file(tmp_path: Path) -> None:
    first = multipart([("csrf_token", TOKEN.encode()), ("doc", b"written before the limit", "a")], close=False)
    rest = multipart([("extra", b"y" * 90, "b")])
    with pytest.raises(UploadTooLarge):
        read(request([first, rest]), tmp_path, body_limit=len(first) + 10)
    assert left(tmp_path) == []  # the file already complete is deleted too


def test_a_body_cut_short_is_refused_and_keeps_no_file(tmp_path: Path) -> None:
    whole = multipart([("csrf_token", TOKEN.encode()), ("doc", b"complete", "a"), ("extra", b"half of it", "b")])
    for cut in (whole[: whole.index(b"half") + 4], whole[: -len(f"--{BOUNDARY}--\r\n")]):
        with pytest.raises(InvalidDataError, match="cut short"):
            read(request([cut]), tmp_path)
        assert left(tmp_path) == []
    with pytest.raises(AccessDeniedError):  # cut short before the token: refused as any form without one
        read(request([whole[:20]]), tmp_path)


def test_a_client_that_disconnects_mid_file_leaves_no_file(tmp_path: Path) -> None:
    body = multipart([("csrf_token", TOKEN.encode()), ("doc", b"complete", "a"), ("extra", b"partial" * 5, "b")])
    with pytest.raises(ClientDisconnect):
        read(request([body[: body.index(b"partial") + 20]], disconnect=True), tmp_path)
    assert left(tmp_path) == []


def test_a_malformed_body_is_refused_and_keeps_no_file(tmp_path: Path) -> None:
    body = multipart([("csrf_token", TOKEN.encode()), ("doc", b"complete", "a")], close=False)
    with pytest.raises(InvalidDataError, match="cut short or is malformed"):
        read(request([body + f"--{BOUNDARY} garbage\r\n".encode()]), tmp_path)
    assert left(tmp_path) == []


def test_too_many_parts_are_refused_and_keep_no_file(tmp_path: Path) -> None:
    body = multipart([("csrf_token", TOKEN.encode()), ("doc", b"complete", "a"), *[("note", b"x")] * 3])
    with pytest.raises(InvalidDataError, match="more fields than this page sends"):
        read(request([body]), tmp_path, max_parts=4)
    assert left(tmp_path) == []
    assert read(request([body]), tmp_path, max_parts=5).files  # as many as allowed: read


def test_a_text_field_over_its_limit_is_refused_by_name(tmp_path: Path) -> None:
    body = multipart([("csrf_token", TOKEN.encode()), ("doc", b"complete", "a"), ("note", b"x" * 21)])
    with pytest.raises(InvalidDataError, match="a form field is too long") as refused:
        read(request([body]), tmp_path)
    assert [(p.location, p.message) for p in refused.value.problems] == [("note", "at most 1 KiB")]
    assert left(tmp_path) == []
    with pytest.raises(InvalidDataError, match="too long"):  # the token too is capped
        read(request([multipart([("csrf_token", b"t" * 257)])]), tmp_path)


def test_a_part_with_overlong_headers_is_refused(tmp_path: Path) -> None:
    token = multipart([("csrf_token", TOKEN.encode())], close=False)
    many = "".join(f"X-Padding-{i}: {'p' * 4000}\r\n" for i in range(HEADER_LIMIT // 4000 + 1))
    part = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="note"\r\n{many}\r\nx\r\n--{BOUNDARY}--\r\n'
    with pytest.raises(InvalidDataError, match="a part's headers are too long"):
        read(request([token + part.encode()]), tmp_path, body_limit=10 * HEADER_LIMIT)
    one = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{"n" * HEADER_LIMIT}"\r\n\r\nx\r\n'
    with pytest.raises(InvalidDataError, match="malformed"):  # one header line that long: the parser's own limit
        read(request([token + one.encode()]), tmp_path, body_limit=10 * HEADER_LIMIT)
    assert left(tmp_path) == []
