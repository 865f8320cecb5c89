"""Row ids: short random hex, one function so every table's ids look alike."""

from __future__ import annotations

import uuid


def new_id() -> str:
    return uuid.uuid4().hex[:12]
