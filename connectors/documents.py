"""Text out of the files people send: PDF, plain text, CSV and e-mail (.eml).

A file shared in Slack is untrusted bytes. This module turns it into text the ``extract`` step
can read, or refuses it with one short sentence a person can act on ("INV.docx is a Word
document; Switchboard reads PDF, text, CSV and .eml files"). It decides what a file is from its
first bytes and its name, never from the MIME type Slack reports alone, because that type is
whatever the uploader's client guessed.

Exceptions::

    DocumentRefused            the file cannot be read as a document (not retryable)
    ├── UnsupportedDocument    a kind we do not read (images, Office files, archives, binaries)
    └── UnreadableDocument     a kind we read but this file is broken, encrypted or empty of text

Parsing runs in a worker thread (:func:`document_text`) so a 40-page PDF does not stall the
event loop that acks Slack; pages past ``max_pages`` are not read at all, and the text is cut at
``max_chars`` (the request-text cap applies again when a run starts).
"""

from __future__ import annotations

import asyncio
import csv
import email
import io
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from html.parser import HTMLParser
from typing import Literal

__all__ = [
    "DocumentKind",
    "DocumentRefused",
    "DocumentText",
    "UnreadableDocument",
    "UnsupportedDocument",
    "document_kind",
    "document_text",
    "read_document",
]

DocumentKind = Literal["pdf", "text", "csv", "email"]

_TEXT_SUFFIXES = {".txt": "text", ".md": "text", ".log": "text", ".csv": "csv", ".eml": "email"}
# First bytes of kinds people often drop by mistake, so the refusal can name what it is.
_KNOWN_BINARIES = (
    (b"PK\x03\x04", "an Office document or ZIP archive"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\xd0\xcf\x11\xe0", "an old-style Office document"),
)
READABLE = "Switchboard reads PDF, text, CSV and .eml files"


class DocumentRefused(ValueError):
    """The file cannot become text; ``str(error)`` is the sentence to show the person."""


class UnsupportedDocument(DocumentRefused):
    """A kind of file Switchboard does not read."""


class UnreadableDocument(DocumentRefused):
    """A PDF, text, CSV or e-mail file that is broken, encrypted or holds no text."""


@dataclass(frozen=True)
class DocumentText:
    """What a file says: its kind, its text, and how many pages were read (PDF only)."""

    kind: DocumentKind
    text: str
    pages: int = 0
    truncated: bool = False


def document_kind(data: bytes, filename: str) -> DocumentKind:
    """What ``data`` is, from its first bytes, then its name; refuses what we do not read."""
    name = filename.rsplit("/", 1)[-1] or "the file"
    if data.lstrip()[:5] == b"%PDF-":
        return "pdf"
    for magic, what in _KNOWN_BINARIES:
        if data.startswith(magic):
            raise UnsupportedDocument(f"{name} is {what}; {READABLE}.")
    if b"\x00" in data[:4096]:
        raise UnsupportedDocument(f"{name} is a binary file; {READABLE}.")
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if suffix == ".pdf":
        raise UnreadableDocument(f"{name} is named .pdf but is not a PDF file.")
    kind = _TEXT_SUFFIXES.get(suffix)
    if kind is None and suffix:
        raise UnsupportedDocument(f"{name} is a {suffix} file; {READABLE}.")
    return "text" if kind is None else kind  # type: ignore[return-value]


def read_document(
    data: bytes, filename: str, *, max_pages: int = 50, max_chars: int = 100_000
) -> DocumentText:
    """The text of one file (blocking; see :func:`document_text` for the async door)."""
    name = filename.rsplit("/", 1)[-1] or "the file"
    if not data:
        raise UnreadableDocument(f"{name} is empty.")
    kind = document_kind(data, filename)
    pages = 0
    if kind == "pdf":
        text, pages = _pdf_text(data, name, max_pages)
    elif kind == "email":
        text = _email_text(data)
    elif kind == "csv":
        text = _csv_text(_decoded(data))
    else:
        text = _decoded(data)
    text = text.strip()
    if not text:
        raise UnreadableDocument(f"{name} has no text Switchboard can read (a scanned image?).")
    truncated = len(text) > max_chars
    return DocumentText(kind=kind, text=text[:max_chars], pages=pages, truncated=truncated)


async def document_text(
    data: bytes, filename: str, *, max_pages: int = 50, max_chars: int = 100_000
) -> DocumentText:
    """:func:`read_document` off the event loop."""
    return await asyncio.to_thread(
        read_document, data, filename, max_pages=max_pages, max_chars=max_chars
    )


def _decoded(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Windows-1252 is what spreadsheets and old mail clients write when it is not UTF-8.
        return data.decode("cp1252", errors="replace")


def _pdf_text(data: bytes, name: str, max_pages: int) -> tuple[str, int]:
    from pypdf import PdfReader  # imported here: the ack path and the CLI never need it

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise UnreadableDocument(f"{name} is password-protected; send it without a password.")
        pages = reader.pages[:max_pages]
        # Layout mode keeps a table's columns on one line each, which line-item extraction reads.
        text = "\n".join(page.extract_text(extraction_mode="layout") for page in pages)
    except DocumentRefused:
        raise
    except Exception as exc:  # a hostile or broken PDF may raise anything: refuse it
        raise UnreadableDocument(
            f"{name} could not be read as a PDF ({type(exc).__name__})."
        ) from exc
    return text, len(pages)


def _csv_text(text: str) -> str:
    """Rows as ``a | b | c`` lines: the same shape a PDF table's text has for ``extract``."""
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = csv.reader(io.StringIO(text), dialect)
    return "\n".join(" | ".join(cell.strip() for cell in row) for row in rows if any(row))


def _email_text(data: bytes) -> str:
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)  # policy.default always builds EmailMessage
    lines = [f"{h}: {message[h]}" for h in ("From", "To", "Date", "Subject") if message[h]]
    body = message.get_body(preferencelist=("plain", "html"))
    if body is not None:
        content = body.get_content()
        if body.get_content_subtype() == "html":
            content = _html_text(content)
        lines += ["", str(content)]
    attached = [part.get_filename() for part in message.iter_attachments() if part.get_filename()]
    if attached:
        lines += ["", "Attachments: " + ", ".join(str(a) for a in attached)]
    return "\n".join(lines)


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in ("script", "style")
        if tag in ("br", "p", "div", "tr", "li"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style") and self._skip > 0

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _html_text(html: str) -> str:
    parser = _TextOnly()
    parser.feed(html)
    return "".join(parser.parts)
