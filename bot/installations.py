"""Where the app's installations live: our database, through slack_sdk's store interfaces.

``DatabaseInstallationStore`` is an ``AsyncInstallationStore`` (what Bolt's OAuth flow
saves into, its authorize reads and its token-revocation listeners delete from); one row
per workspace (``slack_installations``: the latest install, as ``Installation`` fields in
``data``), so a reinstall or a rotated token replaces it. ``DatabaseStateStore`` is an
``AsyncOAuthStateStore``: ``state`` values of installs in progress, each consumed once
(``slack_oauth_states``), so any replica may finish an install another one started.
Both go through ``Store`` sessions like every other table.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from sqlalchemy import delete, select

from workflows.ports import Clock
from workflows.store import Store
from workflows.tables import InstallationRow, OAuthStateRow

log = logging.getLogger(__name__)

BOT_FIELDS = (
    "bot_token",
    "bot_id",
    "bot_user_id",
    "bot_scopes",
    "bot_refresh_token",
    "bot_token_expires_at",
)


def installation_key(enterprise_id: str | None, team_id: str | None, org_wide: bool) -> str:
    """An org-wide (Enterprise Grid) install is the org's, whatever team a request names."""
    return f"{enterprise_id or '-'}:{'-' if org_wide else team_id or '-'}"


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """``to_dict_for_copying`` with its datetimes as epoch seconds (JSON, and the form the
    ``Installation`` constructor takes back)."""
    out = {}
    for name, value in values.items():
        if isinstance(value, datetime):
            value = value.timestamp()
            value = int(value) if name.endswith("expires_at") else value
        out[name] = value
    return out


class DatabaseInstallationStore(AsyncInstallationStore):
    def __init__(self, store: Store, clock: Clock, client_id: str) -> None:
        self.store = store
        self.clock = clock
        self.client_id = client_id

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_save(self, installation: Installation) -> None:
        now = self.clock.now()
        key = installation_key(
            installation.enterprise_id,
            installation.team_id,
            bool(installation.is_enterprise_install),
        )
        data = _plain(installation.to_dict_for_copying())
        async with self.store.transaction() as session:
            row = await session.get(InstallationRow, key, with_for_update=True)
            if row is None:
                session.add(
                    InstallationRow(
                        id=key,
                        enterprise_id=installation.enterprise_id,
                        team_id=installation.team_id,
                        data=data,
                        installed_at=now,
                        updated_at=now,
                    )
                )
                return
            row.data, row.updated_at = data, now
        log.info("Slack installation saved", extra={"team_id": installation.team_id})

    async def async_save_bot(self, bot: Bot) -> None:
        """A rotated bot token: only the bot's fields of the stored installation change."""
        key = installation_key(bot.enterprise_id, bot.team_id, bool(bot.is_enterprise_install))
        fresh = _plain(bot.to_dict_for_copying())
        async with self.store.transaction() as session:
            row = await session.get(InstallationRow, key, with_for_update=True)
            if row is not None:
                row.data = row.data | {name: fresh.get(name) for name in BOT_FIELDS}
                row.updated_at = self.clock.now()

    async def _row(
        self, enterprise_id: str | None, team_id: str | None, org_wide: bool | None
    ) -> InstallationRow | None:
        keys = [installation_key(enterprise_id, team_id, bool(org_wide))]
        if enterprise_id and not org_wide:  # a team of an org that installed org-wide
            keys.append(installation_key(enterprise_id, None, True))
        async with self.store.read() as session:
            rows = (
                await session.scalars(select(InstallationRow).where(InstallationRow.id.in_(keys)))
            ).all()
        return min(rows, key=lambda r: keys.index(r.id), default=None)

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        row = await self._row(enterprise_id, team_id, is_enterprise_install)
        if row is None:
            return None
        installation = Installation(**row.data)
        if user_id is not None and installation.user_id != user_id:
            return None  # we keep the installer's user token only
        return installation

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        row = await self._row(enterprise_id, team_id, is_enterprise_install)
        if row is None or not row.data.get("bot_token"):
            return None
        return Installation(**row.data).to_bot()

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.async_delete_all(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        if user_id is None:
            await self.async_delete_all(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        keys = {installation_key(enterprise_id, team_id, False)}
        if enterprise_id and not team_id:
            keys.add(installation_key(enterprise_id, None, True))
        async with self.store.transaction() as session:
            await session.execute(delete(InstallationRow).where(InstallationRow.id.in_(keys)))
        log.info("Slack installation deleted", extra={"team_id": team_id})

    async def installed_teams(self) -> list[str]:
        """Team ids with an installation (readiness, the console)."""
        async with self.store.read() as session:
            rows = await session.scalars(select(InstallationRow.team_id))
            return sorted(t for t in rows if t)


class DatabaseStateStore(AsyncOAuthStateStore):
    """One-use OAuth ``state`` values, ``expiration_seconds`` long (Bolt checks the value
    against its browser cookie too)."""

    def __init__(self, store: Store, clock: Clock, expiration_seconds: int = 600) -> None:
        self.store = store
        self.clock = clock
        self.expiration_seconds = expiration_seconds

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        state = secrets.token_urlsafe(32)
        now = self.clock.now()
        expires = now + timedelta(seconds=self.expiration_seconds)
        async with self.store.transaction() as session:
            await session.execute(delete(OAuthStateRow).where(OAuthStateRow.expires_at < now))
            session.add(OAuthStateRow(state=state, expires_at=expires))
        return state

    async def async_consume(self, state: str) -> bool:
        now = datetime.now(UTC) if self.clock is None else self.clock.now()
        async with self.store.transaction() as session:
            result = await session.execute(
                delete(OAuthStateRow).where(
                    OAuthStateRow.state == state[:64], OAuthStateRow.expires_at >= now
                )
            )
        return bool(getattr(result, "rowcount", 0) == 1)
