"""The stand-in systems' data: one SQLite file, created and seeded fresh at every start.

Tables, by the system that owns them (the ``warehouse`` SQL connection reads the
same file read-only, as a reporting replica would):

- ERP: ``purchase_orders``, ``ledger`` (booked invoices), ``vendor_accounts`` and
  ``vendor_entries`` (the vendor ledger), ``transactions`` (payments, for compliance);
- CRM: ``customers`` (by Slack user), ``escalations``, ``attribution`` (leads and
  revenue per campaign), ``campaign_reports``;
- ads: ``ad_metrics`` (impressions, clicks, spend, conversions per campaign);
- IAM / HR: ``directory`` (role and manager per Slack user), ``access_policy``, ``grants``;
- ticketing (Jira-shaped): ``tickets``; GRC: ``compliance_reports``;
- every API: ``idempotency`` (the stored answer per ``Idempotency-Key``).

Payment dates are relative to the day the file is made, so a compliance scan of
"the last 14 days" always finds the same exceptions.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

from sandbox.standins.seed import USER_IDS

SCHEMA = """
create table purchase_orders (
    po_number text primary key, vendor text not null, amount real not null,
    currency text not null, status text not null, description text not null
);
create table ledger (
    id integer primary key autoincrement, vendor text not null, invoice_number text not null,
    po_number text, amount real not null, currency text not null, approved_by text,
    source_run text, booked_at text not null, unique (vendor, invoice_number)
);
create table vendor_accounts (
    vendor text primary key, currency text not null, balance real not null
);
create table vendor_entries (
    id integer primary key autoincrement, vendor text not null, invoice_number text not null,
    amount real not null, currency text not null, ledger_entry integer, created_at text not null
);
create table transactions (
    id text primary key, booked_on text not null, vendor text not null, amount real not null,
    currency text not null, created_by text not null, approved_by text not null,
    description text not null
);
create table customers (
    id text primary key, slack_user text unique, name text not null, company text not null,
    email text not null, tier text not null, account_owner text not null
);
create table escalations (
    id integer primary key autoincrement, customer text not null, priority text not null,
    category text, summary text not null, source_run text, created_at text not null
);
create table attribution (
    client text not null, campaign text not null, leads integer, deals integer, revenue real,
    primary key (client, campaign)
);
create table ad_metrics (
    client text not null, campaign text not null, impressions integer, clicks integer,
    spend real, conversions integer, primary key (client, campaign)
);
create table campaign_reports (
    id integer primary key autoincrement, client text not null, period text not null,
    summary text not null, totals text not null, approved_by text, created_at text not null
);
create table directory (
    slack_user text primary key, name text not null, email text not null, role text not null,
    department text not null, manager text
);
create table access_policy (
    role text not null, system text not null, allowed integer not null, note text not null,
    primary key (role, system)
);
create table grants (
    id integer primary key autoincrement, slack_user text not null, system text not null,
    reason text not null, approved_by text, status text not null, created_at text not null
);
create table tickets (
    id integer primary key autoincrement, key text unique, project text not null,
    summary text not null, description text not null, issue_type text not null,
    labels text not null, created_at text not null, status text not null default 'To Do'
);
create table ticket_comments (
    id integer primary key autoincrement, ticket text not null, body text not null,
    properties text not null, created_at text not null
);
create table compliance_reports (
    id integer primary key autoincrement, period text not null, exceptions integer not null,
    outcome text not null, reviewed_by text, body text not null, created_at text not null
);
create table idempotency (
    key text not null, path text not null, status integer not null, body text not null,
    primary key (key, path)
);
"""

PURCHASE_ORDERS = [
    # po, vendor, amount, currency, status, description
    ("PO-7781", "ACME", 12000.0, "EUR", "open", "Warehouse shelving, 40 units"),
    ("PO-7782", "Globex", 5000.0, "EUR", "open", "Consulting, 10 days"),
    ("PO-7783", "Initech", 2400.0, "USD", "open", "Printer fleet service, Q3"),
    ("PO-7790", "Umbrella", 880.0, "GBP", "closed", "Lab supplies"),
]

VENDOR_ACCOUNTS = [("ACME", "EUR", 0.0), ("Globex", "EUR", 0.0), ("Initech", "USD", 0.0)]

CUSTOMERS = [
    (
        "C-1001",
        USER_IDS["alice"],
        "Alice Archer",
        "Acme Corp",
        "alice@acme.example",
        "enterprise",
        "erin",
    ),
    ("C-1002", USER_IDS["bob"], "Bob Baker", "Globex", "bob@globex.example", "standard", "erin"),
]

AD_METRICS = [
    # client, campaign, impressions, clicks, spend, conversions
    ("acme", "spring-search", 120000, 4800, 6200.0, 310),
    ("acme", "social-retargeting", 95000, 2100, 3100.0, 140),
    ("acme", "display-awareness", 400000, 1200, None, 12),
    ("globex", "brand-search", 40000, 2000, 1800.0, 90),
]

ATTRIBUTION = [
    # client, campaign, leads, deals, revenue
    ("acme", "spring-search", 300, 41, 52000.0),
    ("acme", "social-retargeting", 82, 9, 8700.0),
    ("acme", "display-awareness", 11, 0, 0.0),
    ("globex", "brand-search", 88, 12, 14400.0),
]

DIRECTORY = [
    # slack user, name, e-mail, role, department, manager
    ("alice", "Alice Archer", "analyst", "Finance", "carol"),
    ("bob", "Bob Baker", "engineer", "IT", "carol"),
    ("carol", "Carol Chen", "manager", "Operations", "frank"),
    ("dana", "Dana Dorsey", "finance-lead", "Finance", "carol"),
    ("erin", "Erin Ellis", "strategist", "Marketing", "carol"),
    ("frank", "Frank Fischer", "compliance-officer", "Legal", None),
]

ACCESS_POLICY = [
    ("analyst", "tableau", 1, "Analysts may use Tableau with manager approval."),
    ("analyst", "salesforce", 1, "Read access for analysts, manager approval."),
    ("analyst", "aws-prod", 0, "Production cloud access is for engineers only."),
    ("engineer", "aws-prod", 1, "Engineers may get production access with manager approval."),
    ("engineer", "github", 1, "Engineers may join the GitHub organisation."),
    ("strategist", "salesforce", 1, "Strategists use Salesforce daily."),
    ("strategist", "tableau", 1, "Strategists may use Tableau."),
]

PAYMENT_LIMIT = 10000.0
"""Payments above this need a second look (the compliance scan's over-limit rule)."""


def _weekday_before(today: dt.date, weekday: int) -> dt.date:
    """The most recent ``weekday`` (0 = Monday) strictly before ``today``."""
    back = (today.weekday() - weekday) % 7 or 7
    return today - dt.timedelta(days=back)


def transactions(today: dt.date) -> list[tuple[object, ...]]:
    """Payments of the past week: three clean ones and three exceptions, one per rule."""
    monday, tuesday = _weekday_before(today, 0), _weekday_before(today, 1)
    wednesday, thursday = _weekday_before(today, 2), _weekday_before(today, 3)
    saturday = _weekday_before(today, 5)
    return [
        ("TX-9001", monday.isoformat(), "ACME", 4200.0, "EUR", "alice", "dana", "Shelving deposit"),
        (
            "TX-9002",
            tuesday.isoformat(),
            "Globex",
            18500.0,
            "EUR",
            "alice",
            "dana",
            "Consulting retainer, full year",
        ),
        (
            "TX-9003",
            wednesday.isoformat(),
            "Initech",
            950.0,
            "USD",
            "bob",
            "carol",
            "Printer service",
        ),
        (
            "TX-9004",
            saturday.isoformat(),
            "Hooli",
            3100.0,
            "EUR",
            "bob",
            "carol",
            "Cloud credits top-up",
        ),
        (
            "TX-9005",
            thursday.isoformat(),
            "Umbrella",
            760.0,
            "GBP",
            "dana",
            "dana",
            "Lab supplies, rush order",
        ),
        ("TX-9006", thursday.isoformat(), "ACME", 1200.0, "EUR", "alice", "carol", "Spare parts"),
    ]


def create_database(path: Path, today: dt.date | None = None) -> None:
    """(Re)create the stand-ins' SQLite file at ``path`` with the seed data."""
    today = today or dt.date.today()
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    connection = sqlite3.connect(path)
    try:
        connection.execute("pragma journal_mode = wal")
        connection.executescript(SCHEMA)
        connection.executemany(
            "insert into purchase_orders values (?, ?, ?, ?, ?, ?)", PURCHASE_ORDERS
        )
        connection.executemany("insert into vendor_accounts values (?, ?, ?)", VENDOR_ACCOUNTS)
        connection.executemany(
            "insert into transactions values (?, ?, ?, ?, ?, ?, ?, ?)", transactions(today)
        )
        connection.executemany("insert into customers values (?, ?, ?, ?, ?, ?, ?)", CUSTOMERS)
        connection.executemany("insert into ad_metrics values (?, ?, ?, ?, ?, ?)", AD_METRICS)
        connection.executemany("insert into attribution values (?, ?, ?, ?, ?)", ATTRIBUTION)
        connection.executemany(
            "insert into directory values (?, ?, ?, ?, ?, ?)",
            [
                (
                    USER_IDS[user],
                    name,
                    f"{user}@example.com",
                    role,
                    department,
                    USER_IDS[manager] if manager else None,
                )
                for user, name, role, department, manager in DIRECTORY
            ],
        )
        connection.executemany("insert into access_policy values (?, ?, ?, ?)", ACCESS_POLICY)
        connection.commit()
    finally:
        connection.close()
