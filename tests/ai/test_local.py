"""LocalProvider behaviour on small data: the real model, no mocks (fast: one model load)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from connectors.ai.base import (
    AIProviderUnavailable,
    ClassifyRequest,
    ExtractRequest,
    FieldSpec,
    LabelSpec,
    SummarizeRequest,
)
from connectors.ai.evaluation import Scored, accuracy, expected_calibration_error, triage
from connectors.ai.local import LocalProvider, label_set_key
from connectors.ai.local_classifier import METHOD_VERSION

CLINC = Path(__file__).resolve().parents[2] / "examples" / "data" / "clinc150"
# Both CLINC tests use the same label set, so the provider fits it once.
CLINC_DOMAINS = ["banking", "kitchen_and_dining", "travel", "work"]

LABELS = [
    LabelSpec(
        name="it",
        examples=[
            "my laptop will not turn on",
            "I forgot my password and am locked out",
            "the VPN keeps disconnecting",
            "please install Excel on my machine",
            "my monitor is flickering",
            "I need access to the shared drive",
        ],
    ),
    LabelSpec(
        name="finance",
        examples=[
            "please approve this vendor invoice",
            "when will my expense report be reimbursed",
            "the purchase order amount looks wrong",
            "I need a budget code for the conference",
            "can you pay this supplier bill",
            "question about my corporate card statement",
        ],
    ),
    LabelSpec(
        name="hr",
        examples=[
            "how many vacation days do I have left",
            "I want to request parental leave",
            "my payslip shows the wrong tax class",
            "how do I update my home address in the HR system",
            "when is open enrolment for health insurance",
            "I would like to discuss a complaint about my manager",
        ],
    ),
]


@pytest.fixture(scope="module")
def provider() -> LocalProvider:
    # One model load for the file; each test runs its own event loop through asyncio.run
    # in the async tests, so the provider is created outside any loop.
    return LocalProvider()


@pytest.fixture
async def fresh() -> AsyncIterator[LocalProvider]:
    p = LocalProvider()
    yield p
    await p.aclose()


def clinc_subset(
    domains: list[str], shots: int, per_intent_test: int
) -> tuple[list[LabelSpec], list[tuple[str, str]], list[str]]:
    splits = json.loads((CLINC / "data_full.json").read_text(encoding="utf-8"))
    owner = {
        i: d
        for d, intents in json.loads((CLINC / "domains.json").read_text()).items()
        for i in intents
    }
    groups: dict[str, dict[str, list[str]]] = {}
    for text, intent in splits["train"]:
        if owner[intent] in domains:
            bucket = groups.setdefault(owner[intent], {}).setdefault(intent, [])
            if len(bucket) < shots:
                bucket.append(text)
    seen: dict[str, int] = {}
    test: list[tuple[str, str]] = []
    for text, intent in splits["test"]:
        if owner[intent] in domains and seen.get(intent, 0) < per_intent_test:
            seen[intent] = seen.get(intent, 0) + 1
            test.append((text, owner[intent]))
    oos = [t for t, _ in splits["oos_test"][:60]]
    labels = [LabelSpec(name=d, example_groups=g) for d, g in sorted(groups.items())]
    return labels, test, oos


async def test_clear_cases_get_the_right_label_best_first(provider: LocalProvider) -> None:
    cases = {
        "my laptop screen is black and it won't boot": "it",
        "please reimburse my travel expenses": "finance",
        "I'd like to take two weeks of vacation in August": "hr",
    }
    for text, expected in cases.items():
        result = await provider.classify(ClassifyRequest(text=text, labels=LABELS))
        assert result.label == expected, (text, result)
        assert result.candidates[0].label == expected
        confidences = [c.confidence for c in result.candidates]
        assert confidences == sorted(confidences, reverse=True)
        assert {c.label for c in result.candidates} == {"it", "finance", "hr"}
        assert result.provenance.provider == "local"
        assert result.provenance.model == "all-MiniLM-L6-v2-int8"
        assert result.provenance.prompt_version == METHOD_VERSION


async def test_gibberish_and_unrelated_requests_get_low_confidence(provider: LocalProvider) -> None:
    clear = await provider.classify(
        ClassifyRequest(text="I cannot log in, my password expired", labels=LABELS)
    )
    for text in [
        "qwxz plorf zzzt vrrk",
        "what is the capital of mongolia",
        "tell me a joke about cats",
    ]:
        result = await provider.classify(ClassifyRequest(text=text, labels=LABELS))
        assert result.confidence < clear.confidence - 0.2, (text, result.confidence)
        assert result.confidence < 0.5, (text, result.confidence)


async def test_clinc_subset_routes_and_triages(provider: LocalProvider) -> None:
    labels, test, oos = clinc_subset(CLINC_DOMAINS, 6, 2)
    prediction = await asyncio.to_thread(provider.score, labels, [t for t, _ in test] + oos)
    conf = prediction.confidences()
    best = conf.argmax(axis=1)
    records = [
        Scored(truth, prediction.labels[int(b)], float(conf[i, b]))
        for i, (truth, b) in enumerate(
            zip([d for _, d in test] + [None] * len(oos), best, strict=True)
        )
    ]
    assert accuracy(records) >= 0.95
    # Out-of-scope queries score lower than in-scope ones on the whole.
    in_conf = np.mean([r.confidence for r in records if r.truth])
    oos_conf = np.mean([r.confidence for r in records if r.truth is None])
    assert in_conf > oos_conf + 0.2
    report = triage(records, 0.5)
    assert report.in_scope_routed >= 0.8
    assert report.out_of_scope_triaged >= 0.6


async def test_confidence_is_roughly_calibrated(provider: LocalProvider) -> None:
    labels, test, oos = clinc_subset(CLINC_DOMAINS, 6, 2)
    texts = [t for t, _ in test] + oos
    prediction = await asyncio.to_thread(provider.score, labels, texts)
    conf = prediction.confidences()
    best = conf.argmax(axis=1)
    records = [
        Scored(truth, prediction.labels[int(b)], float(conf[i, b]))
        for i, (truth, b) in enumerate(
            zip([d for _, d in test] + [None] * len(oos), best, strict=True)
        )
    ]
    # Higher confidence, more often right: the top half beats the bottom half.
    ranked = sorted(records, key=lambda r: r.confidence)
    half = len(ranked) // 2
    low = np.mean([r.truth == r.predicted for r in ranked[:half]])
    high = np.mean([r.truth == r.predicted for r in ranked[half:]])
    assert high > low + 0.2
    assert expected_calibration_error(records) < 0.2
    assert all(0.0 <= r.confidence <= 1.0 for r in records)


async def test_fitted_model_is_cached_per_label_set(fresh: LocalProvider) -> None:
    await fresh.classify(ClassifyRequest(text="VPN is down", labels=LABELS))
    await fresh.classify(ClassifyRequest(text="approve invoice", labels=list(LABELS)))
    assert fresh.fits == 1
    changed = [
        *LABELS[:2],
        LABELS[2].model_copy(update={"examples": [*LABELS[2].examples, "sick leave"]}),
    ]
    assert label_set_key(changed) != label_set_key(LABELS)
    await fresh.classify(ClassifyRequest(text="VPN is down", labels=changed))
    assert fresh.fits == 2
    await fresh.classify(ClassifyRequest(text="VPN is down", labels=LABELS))
    assert fresh.fits == 2


async def test_labels_without_examples_fall_back_to_name_and_description(
    fresh: LocalProvider,
) -> None:
    labels = [
        LabelSpec(name="weather", description="forecasts, rain, temperature outside"),
        LabelSpec(name="music", description="songs, playlists, play an album"),
    ]
    result = await fresh.classify(ClassifyRequest(text="will it rain tomorrow?", labels=labels))
    assert result.label == "weather"


async def test_classify_does_not_block_the_event_loop(fresh: LocalProvider) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    task = asyncio.create_task(ticker())
    await fresh.classify(ClassifyRequest(text="my payslip is wrong", labels=LABELS))  # load + fit
    task.cancel()
    assert ticks >= 3


async def test_tampered_model_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not the model")
    with pytest.raises(AIProviderUnavailable):
        await LocalProvider(model_path=bad).classify(ClassifyRequest(text="x", labels=LABELS))


async def test_extract_finds_typed_fields_and_reports_missing(provider: LocalProvider) -> None:
    text = (
        "Invoice from Acme GmbH for 12,400 EUR, PO-4471, due 2024-07-31. "
        "Questions to billing@acme.example. Quantity: 40 units."
    )
    fields = [
        FieldSpec(name="amount", type="money"),
        FieldSpec(name="po_number", pattern=r"\b(PO-\d+)\b"),
        FieldSpec(name="due", type="date"),
        FieldSpec(name="contact", type="email"),
        FieldSpec(name="quantity", type="int", pattern=r"Quantity:\s*(\d+)"),
        FieldSpec(name="vat_id", pattern=r"VAT\s*ID:?\s*([A-Z]{2}\d+)"),
        FieldSpec(name="cost_centre", pattern=r"cost centre (\d+)", required=False),
    ]
    result = await provider.extract(ExtractRequest(text=text, fields=fields))
    assert result.values["amount"] == "12,400.00 EUR"  # canonical: money.py parses it
    assert result.values["po_number"] == "PO-4471"
    assert result.values["due"] == "2024-07-31"
    assert result.values["contact"] == "billing@acme.example"
    assert result.values["quantity"] == 40
    assert result.values["vat_id"] is None
    assert result.values["cost_centre"] is None
    assert result.missing == ["vat_id"]
    assert result.method == "rules"
    assert result.provenance.provider == "local"


async def test_extract_builtin_numbers_and_dates(provider: LocalProvider) -> None:
    result = await provider.extract(
        ExtractRequest(
            text="7 seats at 19.5 each, paid $1,250.50 on 3 March 2024.",
            fields=[
                FieldSpec(name="paid", type="money"),
                FieldSpec(name="when", type="date"),
                FieldSpec(name="seats", type="int"),
                FieldSpec(name="price", type="float", pattern=r"at (\d+(?:\.\d+)?)"),
                FieldSpec(name="email", type="email"),
            ],
        )
    )
    assert result.values["paid"] == "1,250.50 USD"
    assert result.values["when"] == "2024-03-03"
    assert result.values["seats"] == 7
    assert result.values["price"] == 19.5
    assert result.missing == ["email"]


async def test_extractive_summary_keeps_central_sentences_in_order(provider: LocalProvider) -> None:
    text = (
        "The payment run for vendor invoices failed last night. "
        "The weather was lovely. "
        "Vendor invoices in the payment run were rejected by the bank. "
        "Our cat likes tuna. "
        "We will repeat the payment run for the rejected vendor invoices today."
    )
    result = await provider.summarize(SummarizeRequest(text=text, max_sentences=2))
    assert result.method == "extractive"
    assert "weather" not in result.text and "tuna" not in result.text
    sentences = [s for s in result.text.split(". ") if s]
    assert len(sentences) == 2
    assert result.text.index("payment") < len(result.text)
    short = await provider.summarize(SummarizeRequest(text="Just one line.", max_sentences=3))
    assert short.text == "Just one line."
