"""Redaction of secrets and personal data, and what it must leave alone."""

from __future__ import annotations

import json

import pytest

from bot.settings import load_settings
from connectors.ai.base import SummarizeRequest
from connectors.ai.redact import redact
from connectors.config import resolve_secret
from tests.ai.conftest import ProviderFactory
from tests.fakes.openai_server import FakeOpenAI

# Test values are assembled at run time so no secret-shaped literal sits in the repo
# for a scanner to flag.
SLACK_BOT = "xoxb-" + "123456789012-1234567890123-" + "AbCdEfGhIjKlMnOpQrStUvWx"
SLACK_APP = "xapp-1-" + "A0123456789-1234567890123-" + "abcdef0123456789"
OPENAI_KEY = "sk-" + "proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
AWS_ID = "AKIA" + "IOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
JWT = (
    "eyJhbGciOiJIUzI1NiJ9."
    + "eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    + "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)


@pytest.mark.parametrize(
    ("text", "secret", "expected"),
    [
        ("Mail jane.doe+ap@example.co.uk today", "jane.doe+ap@example.co.uk", "Mail [EMAIL] today"),
        ("Visa 4111 1111 1111 1111 exp 12/27", "4111 1111 1111 1111", "Visa [CARD] exp 12/27"),
        ("MC 5555-5555-5555-4444.", "5555-5555-5555-4444", "MC [CARD]."),
        ("Amex 378282246310005", "378282246310005", "Amex [CARD]"),
        ("IBAN GB82 WEST 1234 5698 7654 32 please", "GB82 WEST", "IBAN [IBAN] please"),
        ("to DE89370400440532013000.", "DE89370400440532013000", "to [IBAN]."),
        ("account no: 12345678", "12345678", "account no: [ACCOUNT]"),
        ("Acct #9876-5432-10 closed", "9876-5432-10", "Acct #[ACCOUNT] closed"),
        ("Call +44 20 7946 0958.", "7946 0958", "Call [PHONE]."),
        ("ring (555) 123-4567 now", "123-4567", "ring [PHONE] now"),
        ("mobile 07700 900123", "07700 900123", "mobile [PHONE]"),
        ("tel: 5551234567", "5551234567", "tel: [PHONE]"),
        (f"token {SLACK_BOT} leaked", SLACK_BOT, "token [SLACK_TOKEN] leaked"),
        (f"app {SLACK_APP}", SLACK_APP, "app [SLACK_TOKEN]"),
        (
            "hook https://hooks.slack.com/services/T0001/B0001/XXXXXXXXXXXXXXXX",
            "hooks.slack.com",
            "hook [SLACK_TOKEN]",
        ),
        (f"OPENAI_API_KEY {OPENAI_KEY}", OPENAI_KEY, "OPENAI_API_KEY [API_KEY]"),
        (f"id {AWS_ID}", AWS_ID, "id [AWS_KEY]"),
        (f"aws secret {AWS_SECRET}", AWS_SECRET, "aws secret [SECRET]"),
        (
            "Authorization: Bearer abcDEF0123456789ghiJKL",
            "abcDEF0123456789ghiJKL",
            "Authorization: Bearer [BEARER_TOKEN]",
        ),
        (f"jwt {JWT}", JWT, "jwt [JWT]"),
        ("password: hunter22 ok", "hunter22", "password: [SECRET] ok"),
        ("api_key=ab12cd34ef56gh78", "ab12cd34ef56gh78", "api_key=[SECRET]"),
        (
            "hmac 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "9f86d081",
            "hmac [SECRET]",
        ),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY----- ok",
            "MIIEow",
            "[PRIVATE_KEY] ok",
        ),
    ],
)
def test_each_kind_is_redacted(text: str, secret: str, expected: str) -> None:
    result = redact(text)
    assert secret not in result.text
    assert result.text == expected
    assert len(result.kinds) == 1


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("a@b.io", "email"),
        ("4111111111111111", "card"),
        ("GB82WEST12345698765432", "iban"),
        ("account number 12345678", "account"),
        ("+1 415 555 0100", "phone"),
        (SLACK_BOT, "slack_token"),
        (OPENAI_KEY, "api_key"),
        (AWS_ID, "aws_key"),
        ("Bearer abcDEF0123456789ghiJKL", "bearer_token"),
        (JWT, "jwt"),
        ("password=swordfish", "secret"),
    ],
)
def test_kind_names(text: str, kind: str) -> None:
    assert redact(text).kinds == [kind]


@pytest.mark.parametrize(
    "text",
    [
        "Invoice INV-2024-00123 for $1,234.56 is due 2024-01-15.",
        "Invoice #INV-000123456, amount 4,500.00 USD, invoice 20240115-0042",
        "Order 1234567890123 total EUR 12 345,67 on 15.01.2024 at 14:30",
        "PO-99812, qty 250, 1 234 567 units, 3.5% of 10,000",
        "ref 550e8400-e29b-41d4-a716-446655440000 build 4521 v1.2.3",
        "Card ending 1111 was declined; order 4111-1111-1111-1112",  # fails Luhn
        "IBAN GB82WEST12345698765433 looks wrong",  # fails mod-97
        "2024-01-15T10:00:00Z, ticket 12345, room 0420",
        "The token expired yesterday; the password is wrong.",
        "token: expired-yesterday",
        "See /Users/JohnSmith/Documents/Project2024/Reports for details",
        "https://example.com/customer_onboarding_checklist_v2_FINAL",
        "Please call me later, phone support is closed. Account closed.",
        "The account 2023 budget was 45000 and Q3 was 1250.",
        "",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    result = redact(text)
    assert result.text == text
    assert result.kinds == []


def test_distinct_values_get_distinct_placeholders() -> None:
    result = redact("From a@x.io to b@x.io, cc a@x.io")
    assert result.text == "From [EMAIL] to [EMAIL_2], cc [EMAIL]"
    assert result.kinds == ["email"]


def test_kinds_are_sorted_and_unique() -> None:
    result = redact(f"a@x.io b@x.io +44 20 7946 0958 {OPENAI_KEY} 4111 1111 1111 1111")
    assert result.kinds == ["api_key", "card", "email", "phone"]


def test_placeholders_already_in_the_text_are_not_reused() -> None:
    result = redact("The form shows [EMAIL]; write to a@x.io")
    assert result.text == "The form shows [EMAIL]; write to [EMAIL_2]"
    assert result.restore("[EMAIL] / [EMAIL_2]") == "[EMAIL] / a@x.io"


def test_restore_puts_back_contact_data_but_never_secrets() -> None:
    text = f"jane@x.io, +44 20 7946 0958, card 4111 1111 1111 1111, key {OPENAI_KEY}"
    result = redact(text)
    answer = result.restore("[EMAIL] [PHONE] [CARD] [API_KEY]")
    assert answer == "jane@x.io +44 20 7946 0958 [CARD] [API_KEY]"


def test_redacting_twice_changes_nothing_more() -> None:
    once = redact(f"password: hunter22 and {SLACK_BOT} and a@x.io")
    twice = redact(once.text)
    assert twice.text == once.text
    assert twice.kinds == []


def test_secret_value_after_a_token_keyword_is_not_double_counted() -> None:
    result = redact(f"token: {SLACK_BOT}")
    assert result.text == "token: [SLACK_TOKEN]"
    assert result.kinds == ["slack_token"]


def test_repr_does_not_leak_originals() -> None:
    result = redact("a@x.io")
    assert "a@x.io" not in repr(result)


# Configured values are not shaped like anything: only the process's configuration knows them.
CONNECTION_TOKEN = "planted-" + "erp-connection-value-" + "c0ffee"
AI_KEY = "planted-" + "ai-provider-value-" + "9e1d"


def announce_configured_secrets() -> None:
    """Read them the way the product does: a connection's secret and the settings."""
    resolve_secret({"ERP_TOKEN": CONNECTION_TOKEN}, "ERP_TOKEN", connection="erp", field="x")
    load_settings(OPENAI_API_KEY=AI_KEY)


def test_configured_secret_values_are_redacted_and_never_restored() -> None:
    announce_configured_secrets()
    out = redact(f"use {CONNECTION_TOKEN} or {AI_KEY} for PO-7781")
    assert out.text == "use [SECRET] or [SECRET_2] for PO-7781"
    assert out.kinds == ["secret"]
    assert out.restore("[SECRET] [SECRET_2]") == "[SECRET] [SECRET_2]"
    assert redact("one-off value-77 here", secrets=["one-off value-77"]).text == "[SECRET] here"


@pytest.mark.asyncio(loop_scope="module")
async def test_the_remote_model_never_receives_a_configured_secret(
    fake_openai: FakeOpenAI, make_provider: ProviderFactory
) -> None:
    announce_configured_secrets()
    provider = make_provider()
    text = f"the ERP token is {CONNECTION_TOKEN}; invoice INV-2026-0042 is late"
    await provider.summarize(SummarizeRequest(text=text, max_sentences=1))
    sent = json.dumps(fake_openai.requests[-1].body)
    assert CONNECTION_TOKEN not in sent and "[SECRET]" in sent
    assert "INV-2026-0042" in sent


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("aws_secret_access_key = " + AWS_SECRET, "aws_secret_access_key = [AWS_KEY]"),
        (
            "dsn postgres://app:" + "Pl4nted-pw" + "@db:5432/x",
            "dsn postgres://app:[URL_PASSWORD]@db:5432/x",
        ),
        ("basic requirements for PO-7781", "basic requirements for PO-7781"),
    ],
)
def test_shared_credential_shapes(text: str, expected: str) -> None:
    assert redact(text).text == expected
