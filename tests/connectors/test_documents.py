"""Files become text, or a one-sentence refusal: PDFs (with a line-item table), text, CSV, .eml."""

from __future__ import annotations

import io
from email.message import EmailMessage

import pytest
from fpdf import FPDF
from pypdf import PdfWriter

from connectors.documents import (
    UnreadableDocument,
    UnsupportedDocument,
    document_text,
    read_document,
)


def invoice_pdf(pages: int = 1) -> bytes:
    pdf = FPDF()
    for page in range(pages):
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        pdf.cell(
            0,
            8,
            f"Invoice INV-1042 from ACME GmbH (page {page + 1})",
            new_x="LMARGIN",
            new_y="NEXT",
        )
        for row in (("Widget", "2", "100.00", "200.00"), ("Bolt pack", "10", "4.50", "45.00")):
            for width, cell in zip((80, 30, 40, 40), row, strict=True):
                pdf.cell(width, 8, cell)
            pdf.ln()
    return bytes(pdf.output())


def test_a_pdf_gives_its_text_with_table_rows_on_one_line_each() -> None:
    doc = read_document(invoice_pdf(), "INV-1042.pdf")
    assert doc.kind == "pdf"
    assert doc.pages == 1
    assert "Invoice INV-1042 from ACME GmbH" in doc.text
    widget = next(line for line in doc.text.splitlines() if "Widget" in line)
    assert widget.split() == ["Widget", "2", "100.00", "200.00"]


def test_pages_past_the_limit_are_not_read() -> None:
    doc = read_document(invoice_pdf(pages=5), "long.pdf", max_pages=2)
    assert doc.pages == 2
    assert "page 2" in doc.text
    assert "page 3" not in doc.text


def test_text_is_cut_at_the_limit_and_says_so() -> None:
    doc = read_document(b"x" * 500, "notes.txt", max_chars=100)
    assert (doc.kind, len(doc.text), doc.truncated) == ("text", 100, True)


def test_csv_rows_read_like_a_table() -> None:
    doc = read_document(b"description;qty;amount\nWidget;2;200.00\n", "lines.csv")
    assert doc.kind == "csv"
    assert doc.text.splitlines() == ["description | qty | amount", "Widget | 2 | 200.00"]


def test_an_email_gives_its_headers_body_and_attachment_names() -> None:
    msg = EmailMessage()
    msg["From"] = "ap@acme.example"
    msg["Subject"] = "Invoice INV-7"
    msg.set_content("Please pay 12,400 EUR.")
    msg.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="INV-7.pdf")
    text = read_document(msg.as_bytes(), "mail.eml").text
    assert "Subject: Invoice INV-7" in text
    assert "Please pay 12,400 EUR." in text
    assert "Attachments: INV-7.pdf" in text


def test_an_html_only_email_is_read_without_its_markup_or_scripts() -> None:
    msg = EmailMessage()
    msg["Subject"] = "Hi"
    msg.set_content("<p>Total <b>99 EUR</b></p><script>steal()</script>", subtype="html")
    text = read_document(msg.as_bytes(), "m.eml").text
    assert "Total 99 EUR" in text
    assert "steal" not in text
    assert "<b>" not in text


def test_latin1_text_is_read_not_refused() -> None:
    assert read_document("Café 12 €".encode("cp1252"), "note.txt").text == "Café 12 €"


@pytest.mark.parametrize(
    ("data", "name", "says"),
    [
        (b"PK\x03\x04rest", "INV.docx", "INV.docx is an Office document or ZIP archive"),
        (b"\x89PNG\r\n\x1a\n", "scan.png", "scan.png is a PNG image"),
        (b"\x00\x01\x02binary", "blob", "blob is a binary file"),
        (b"hello", "sheet.xlsx", "sheet.xlsx is a .xlsx file"),
    ],
)
def test_kinds_we_do_not_read_are_refused_by_name(data: bytes, name: str, says: str) -> None:
    with pytest.raises(UnsupportedDocument) as refused:
        read_document(data, name)
    assert str(refused.value).startswith(says)
    assert "Switchboard reads PDF, text, CSV and .eml files" in str(refused.value)


def test_broken_encrypted_fake_and_empty_files_are_refused_in_one_sentence() -> None:
    writer = PdfWriter(clone_from=io.BytesIO(invoice_pdf()))
    writer.encrypt("secret")
    locked = io.BytesIO()
    writer.write(locked)
    cases = {
        "locked.pdf": (locked.getvalue(), "locked.pdf is password-protected"),
        "broken.pdf": (b"%PDF-1.7\n garbage", "broken.pdf could not be read as a PDF"),
        "fake.pdf": (b"just text", "fake.pdf is named .pdf but is not a PDF file"),
        "empty.txt": (b"", "empty.txt is empty"),
    }
    for name, (data, says) in cases.items():
        with pytest.raises(UnreadableDocument) as refused:
            read_document(data, name)
        assert str(refused.value).startswith(says), name
        assert "\n" not in str(refused.value)


async def test_the_async_door_reads_off_the_event_loop() -> None:
    doc = await document_text(invoice_pdf(), "INV.pdf")
    assert "ACME" in doc.text
