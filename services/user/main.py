"""Wiring of the user service: the only place clients are built and closed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.chassis.app import build_app
from services.chassis.db import DATABASE_UNAVAILABLE_WHEN, LOST_CONNECTION, create_engine, ping
from services.chassis.health import UNSIGNED_PATHS, DependencyCheck
from services.chassis.identity import GatewaySigner
from services.chassis.janitor import Janitor
from services.user.api_keys import ApiKeyService
from services.user.config import UserSettings
from services.user.keys import TokenSigner
from services.user.passwords import Passwords
from services.user.pruning import PRUNE_REFRESH_TOKENS
from services.user.router import JWKS_PATH, router
from services.user.service import UserService

__all__ = ["create_app"]

log = logging.getLogger(__name__)

# Everything else is reachable only through the gateway. The JWKS is public
# by nature, and the gateway fetches it unsigned, as any verifier would.
EXEMPT_PATHS: Final = UNSIGNED_PATHS | {JWKS_PATH}


def create_app(settings: UserSettings | None = None) -> FastAPI:
    settings = settings or UserSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        passwords = Passwords(
            time_cost=settings.argon2_time_cost,
            memory_cost_kib=settings.argon2_memory_cost_kib,
            parallelism=settings.argon2_parallelism,
            workers=settings.password_hash_workers,
        )
        await passwords.start()
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        users = UserService(
            sessions,
            passwords,
            TokenSigner(
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                ttl_seconds=settings.access_token_ttl_seconds,
            ),
            password_min_length=settings.password_min_length,
            refresh_token_ttl_seconds=settings.refresh_token_ttl_seconds,
        )
        app.state.settings = settings
        app.state.users = users
        app.state.api_keys = ApiKeyService(sessions)
        app.state.health_checks = [DependencyCheck("postgres", lambda: ping(engine))]
        # In the background: the service starts whether or not Postgres is
        # up yet, and the key is there before the gateway first asks for the
        # JWKS (a login would make it too, if this lost the race).
        first_key = asyncio.create_task(_ensure_signing_key(users), name="ensure-signing-key")
        janitor = Janitor.for_settings(
            "refresh_tokens",
            engine,
            PRUNE_REFRESH_TOKENS,
            keep_hours=settings.refresh_token_retention_hours,
            settings=settings,
        )
        janitor.start()
        try:
            yield
        finally:
            app.state.draining = True
            await janitor.stop(settings.shutdown_timeout_seconds)
            first_key.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await first_key
            passwords.stop()
            await engine.dispose()

    app = build_app(
        settings,
        title="User service",
        description="Accounts, access tokens the gateway verifies (JWKS), refresh tokens "
        "and API keys.",
        lifespan=lifespan,
        signer=GatewaySigner(settings.internal_auth_key.get_secret_value().encode()),
        unsigned_paths=EXEMPT_PATHS,
        unreachable=LOST_CONNECTION,
        unreachable_when=DATABASE_UNAVAILABLE_WHEN,
    )
    app.include_router(router)
    return app


async def _ensure_signing_key(users: UserService) -> None:
    backoff = 0.1
    while True:
        try:
            kid = await users.ensure_signing_key()
        except Exception as exc:
            log.warning("no signing key yet, retrying", extra={"error": repr(exc)})
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
        else:
            log.info("signing key ready", extra={"kid": kid})
            return
