"""Streaming multipart/form-data: file parts go straight to disk, never whole into memory.

Built on python-multipart's callback parser. Text fields are kept (each under a size
limit); file parts named ``attachments[]``, ``attachments`` or ``attachment`` are
written to ``IncomingWriter``s as their bytes arrive, so an upload over the attachment
limit is refused the moment it passes the limit, before the rest of the body is read.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote

from anyio import to_thread
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from ledgerdesk.attachments.incoming import IncomingFile, IncomingWriter
from ledgerdesk.errors import InvalidBody, LedgerdeskError, PayloadTooLarge, invalid

FILE_FIELDS = frozenset({"attachments[]", "attachments", "attachment"})
MAX_FIELDS = 1000
# replyTicket's content is at most 65535 characters: up to four bytes each in UTF-8.
MAX_TEXT_PART_BYTES = 4 * 65535 + 1024
# All text fields of one body together (the memory budget reserves this much).
MAX_TEXT_BYTES = 2 * MAX_TEXT_PART_BYTES
# RFC 8187 requires these two; anything else in filename* is refused, not decoded.
_FILENAME_CHARSETS = {"utf-8": "utf-8", "iso-8859-1": "latin-1"}
DEFAULT_FILE_TYPE = "application/octet-stream"
_EXTENDED_FILENAME = re.compile(rb"filename\*\s*=\s*([^;]+)", re.IGNORECASE)


class _Part:
    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.name = ""
        self.filename: str | None = None
        self.data = bytearray()
        self.writer: IncomingWriter | None = None
        self.ignored = False


class MultipartReader:
    def __init__(
        self,
        *,
        directory: Path,
        max_files: int,
        max_file_bytes: int,
        file_fields: frozenset[str] = FILE_FIELDS,
    ) -> None:
        self.directory = directory
        self.max_files = max_files
        self.max_file_bytes = max_file_bytes
        self.file_fields = file_fields
        # Text fields in the order they came (bracketed names are nested later).
        self.fields: list[tuple[str, str]] = []
        self.files: list[tuple[IncomingWriter, str, str]] = []
        # Every writer opened, finished or not: all are removed if the body fails.
        self._writers: list[IncomingWriter] = []
        self._text_bytes = 0
        self._part = _Part()
        self._header_name = b""
        self._header_value = b""
        self._field_count = 0
        self._error: LedgerdeskError | None = None

    async def read(self, content_type: str, stream: AsyncIterator[bytes]) -> list[IncomingFile]:
        """Parse the whole body; returns the completed files (caller discards them later)."""
        _, options = parse_options_header(content_type)
        boundary = options.get(b"boundary")
        if not boundary:
            raise InvalidBody("Malformed multipart body: no boundary.")
        parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._on_part_begin,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
            },
        )
        try:
            async for chunk in stream:
                parser.write(chunk)
                if self._error is not None:
                    raise self._error
            parser.finalize()
            if self._error is not None:
                raise self._error
            if self._part.writer is not None or len(self.files) != len(self._writers):
                # The body ended inside a file part (no closing boundary): the file is
                # incomplete, and so is the request.
                raise InvalidBody("Malformed multipart body: it ends inside a part.")
            return await to_thread.run_sync(self._finish_files)
        except FormParserError:
            self.discard()
            raise InvalidBody("Malformed multipart body.") from None
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        for writer in self._writers:
            writer.discard()

    def _finish_files(self) -> list[IncomingFile]:
        return [writer.finish(name, content_type) for writer, name, content_type in self.files]

    # python-multipart callbacks: they cannot raise through the parser cleanly, so the
    # first error is kept and raised by ``read`` after the current chunk.

    def _fail(self, error: LedgerdeskError) -> None:
        if self._error is None:
            self._error = error

    def _on_part_begin(self) -> None:
        self._part = _Part()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        self._part.headers[self._header_name.strip().lower()] = self._header_value.strip()
        self._header_name = b""
        self._header_value = b""

    def _on_headers_finished(self) -> None:
        part = self._part
        if self._error is not None:
            part.ignored = True  # the body is refused: open no more files
            return
        disposition = part.headers.get(b"content-disposition", b"")
        _, options = parse_options_header(disposition)
        if b"name" not in options:
            self._fail(InvalidBody("Malformed multipart body: a part has no name."))
            part.ignored = True
            return
        part.name = _decode(options[b"name"])
        extended = _EXTENDED_FILENAME.search(disposition)
        if extended:
            part.filename = _rfc5987(extended.group(1))
            if part.filename is None:
                self._fail(
                    invalid(
                        "attachments",
                        "a filename* must be UTF-8 or ISO-8859-1 percent-encoded (RFC 8187)",
                    )
                )
                part.ignored = True
                return
        elif b"filename" in options:
            part.filename = _decode(options[b"filename"])
        if part.filename is None:
            self._field_count += 1
            if self._field_count > MAX_FIELDS:
                self._fail(InvalidBody(f"Malformed multipart body: over {MAX_FIELDS} fields."))
            return
        if part.name not in self.file_fields:
            # A file is never dropped without a word (unknown text fields are ignored).
            names = ", ".join(sorted(self.file_fields, reverse=True))
            self._fail(invalid(part.name, f"file parts must be named {names}"))
            part.ignored = True
            return
        if len(self.files) >= self.max_files:
            self._fail(invalid("attachments", f"at most {self.max_files} files per request"))
            part.ignored = True
            return
        label = part.filename or "attachment"
        part.writer = IncomingWriter(self.directory, self.max_file_bytes, label)
        self._writers.append(part.writer)

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        if part.ignored or self._error is not None:
            return
        if part.writer is not None:
            try:
                part.writer.write(data[start:end])
            except LedgerdeskError as exc:
                part.writer = None  # the writer discarded itself
                self._fail(exc)
            return
        if len(part.data) + (end - start) > MAX_TEXT_PART_BYTES:
            self._fail(invalid(part.name, "is too long"))
            return
        self._text_bytes += end - start
        if self._text_bytes > MAX_TEXT_BYTES:
            self._fail(PayloadTooLarge(f"The form fields are larger than {MAX_TEXT_BYTES} bytes."))
            return
        part.data.extend(data[start:end])

    def _on_part_end(self) -> None:
        part = self._part
        if part.ignored or self._error is not None:
            return
        if part.writer is not None:
            content_type = _decode(part.headers.get(b"content-type", b"")) or DEFAULT_FILE_TYPE
            self.files.append((part.writer, part.filename or "", content_type))
            part.writer = None
            return
        try:
            self.fields.append((part.name, part.data.decode("utf-8")))
        except UnicodeDecodeError:
            self._fail(InvalidBody(f"Malformed multipart body: field {part.name!r} is not UTF-8."))


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _rfc5987(raw: bytes) -> str | None:
    """``UTF-8''%C3%A9t%C3%A9.txt`` -> ``été.txt`` (RFC 8187 extended value); None if bad."""
    value = _decode(raw.strip().strip(b'"'))
    charset, _, rest = value.partition("'")
    _, _, encoded = rest.partition("'")
    codec = _FILENAME_CHARSETS.get(charset.strip().lower() or "utf-8")
    if codec is None:
        return None
    try:
        return unquote(encoded, encoding=codec, errors="strict")
    except UnicodeError:
        return None
