"""Banking77 as a routing problem: its 77 intents grouped into 10 teams, 10 examples per intent.

Writes a workflow (``banking77-routing.yaml``, the product's default ``min_confidence``)
and its test split (``test.jsonl``, every one of the 3,080 test queries labelled with its
team) into ``--out``, for ``switchboard eval``. ``--hold-out K`` keeps the last K teams of
``HELD_OUT_ORDER`` out of the workflow and labels their test queries ``triage``: requests
nobody owns, which should go to people.

Reads Banking77 from ``--data`` (default ``shared/data/banking77`` beside the repository or
its parent: the project does not ship it; CC BY 4.0, PolyAI). The grouping is by what a
team would own, written once by reading the intent names, never tuned on scores.

    .venv/bin/python -m bench.banking77_routing --out /tmp/b77 [--hold-out 2]
    .venv/bin/switchboard eval /tmp/b77/banking77-routing.yaml --data /tmp/b77/test.jsonl
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import yaml

from connectors.ai.base import LabelSpec
from examples.clinc.make_workflow import eval_rows, workflow, write_jsonl

ROOT = Path(__file__).resolve().parent.parent
DATA = next(
    (
        up / "shared" / "data" / "banking77"
        for up in (ROOT.parent, ROOT.parent.parent)
        if (up / "shared" / "data" / "banking77").is_dir()
    ),
    ROOT.parent / "shared" / "data" / "banking77",
)
SEED = 0
SHOTS = 10
DEFAULT_MIN_CONFIDENCE = 0.45
"""The classify step's default (``workflows/language/steps/ai.py``): no per-set tuning."""

TEAMS: dict[str, list[str]] = {
    "cards": [
        "activate_my_card",
        "card_arrival",
        "card_delivery_estimate",
        "card_linking",
        "get_physical_card",
        "order_physical_card",
        "getting_spare_card",
        "card_about_to_expire",
        "visa_or_mastercard",
        "supported_cards_and_currencies",
    ],
    "virtual_cards": [
        "get_disposable_virtual_card",
        "getting_virtual_card",
        "virtual_card_not_working",
        "disposable_card_limits",
    ],
    "card_security": [
        "compromised_card",
        "lost_or_stolen_card",
        "lost_or_stolen_phone",
        "change_pin",
        "pin_blocked",
        "passcode_forgotten",
        "card_swallowed",
    ],
    "card_payments": [
        "card_acceptance",
        "card_not_working",
        "contactless_not_working",
        "declined_card_payment",
        "pending_card_payment",
        "reverted_card_payment?",
        "card_payment_not_recognised",
        "card_payment_fee_charged",
        "apple_pay_or_google_pay",
        "transaction_charged_twice",
        "direct_debit_payment_not_recognised",
        "extra_charge_on_statement",
    ],
    "cash": [
        "atm_support",
        "cash_withdrawal_charge",
        "cash_withdrawal_not_recognised",
        "declined_cash_withdrawal",
        "pending_cash_withdrawal",
        "wrong_amount_of_cash_received",
        "wrong_exchange_rate_for_cash_withdrawal",
    ],
    "top_up": [
        "automatic_top_up",
        "pending_top_up",
        "top_up_by_bank_transfer_charge",
        "top_up_by_card_charge",
        "top_up_by_cash_or_cheque",
        "top_up_failed",
        "top_up_limits",
        "top_up_reverted",
        "topping_up_by_card",
        "verify_top_up",
        "balance_not_updated_after_cheque_or_cash_deposit",
    ],
    "transfers": [
        "balance_not_updated_after_bank_transfer",
        "beneficiary_not_allowed",
        "cancel_transfer",
        "declined_transfer",
        "failed_transfer",
        "pending_transfer",
        "receiving_money",
        "transfer_fee_charged",
        "transfer_into_account",
        "transfer_not_received_by_recipient",
        "transfer_timing",
    ],
    "exchange": [
        "card_payment_wrong_exchange_rate",
        "exchange_charge",
        "exchange_rate",
        "exchange_via_app",
        "fiat_currency_support",
        "country_support",
    ],
    "account": [
        "age_limit",
        "edit_personal_details",
        "terminate_account",
        "unable_to_verify_identity",
        "verify_my_identity",
        "verify_source_of_funds",
        "why_verify_identity",
    ],
    "refunds": ["Refund_not_showing_up", "request_refund"],
}
HELD_OUT_ORDER = ["refunds", "exchange", "virtual_cards", "account"]
"""Teams ``--hold-out K`` drops, from the end: fixed, chosen before any measurement."""


def read(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [[row["text"], row["category"]] for row in csv.DictReader(handle)]


def labels_from(train: list[list[str]], teams: dict[str, list[str]], seed: int) -> list[LabelSpec]:
    rng = np.random.default_rng(seed)
    by_intent: dict[str, list[str]] = {}
    for text, intent in train:
        by_intent.setdefault(intent, []).append(text)
    labels = []
    for team in sorted(teams):
        groups = {}
        for intent in teams[team]:
            picked = rng.choice(len(by_intent[intent]), size=SHOTS, replace=False)
            groups[intent] = [by_intent[intent][i] for i in picked]
        labels.append(LabelSpec(name=team, example_groups=groups))
    return labels


def generate(data: Path, out: Path, hold_out: int, seed: int = SEED) -> list[Path]:
    held = set(HELD_OUT_ORDER[len(HELD_OUT_ORDER) - hold_out :]) if hold_out else set()
    teams = {team: intents for team, intents in TEAMS.items() if team not in held}
    owner = {intent: team for team, intents in TEAMS.items() for intent in intents}
    test = read(data / "test.csv")
    owned = [row for row in test if owner[row[1]] not in held]
    nobody = [row for row in test if owner[row[1]] in held]
    labels = labels_from(read(data / "train.csv"), teams, seed)
    definition = workflow(labels, DEFAULT_MIN_CONFIDENCE)
    definition["name"] = "banking77-routing"
    definition["title"] = "Route requests to the owning team (Banking77)"
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "banking77-routing.yaml", out / "test.jsonl"]
    paths[0].write_text(yaml.safe_dump(definition, sort_keys=False, width=4096), encoding="utf-8")
    write_jsonl(paths[1], eval_rows(owned, owner, nobody, seed))
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--hold-out", type=int, default=0, choices=range(len(HELD_OUT_ORDER) + 1))
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    if not (args.data / "train.csv").exists():
        print(f"Banking77 not found at {args.data} (give --data)", file=sys.stderr)
        return 2
    for path in generate(args.data, args.out, args.hold_out, args.seed):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
