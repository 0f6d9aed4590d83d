"""Bearer-token auth as FastAPI dependencies: one for reading routes, one for writing routes."""
from __future__ import annotations

import hmac
from typing import Callable, Optional

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .errors import ApiError

AUTH_SCOPES = ("all", "writes")


def auth_dependencies(api_key: str | None, scope: str) -> tuple[Callable, Callable]:
    """(read dependency, write dependency). api_key None: both open; scope "all": both need
    the key; scope "writes": only writes do. The key is compared in constant time."""
    bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")
    expected = api_key.encode() if api_key else None

    async def check(credentials: Optional[HTTPAuthorizationCredentials] = Depends(bearer)  # noqa: B008
                    ) -> None:
        given = credentials.credentials.encode() if credentials is not None else b""
        if not hmac.compare_digest(given, expected):
            raise ApiError(401, "unauthorized", "a valid API key is required as "
                                                "'Authorization: Bearer <key>'",
                           headers={"WWW-Authenticate": "Bearer"})

    async def open_access() -> None:
        return None

    if expected is None:
        return open_access, open_access
    return (check if scope == "all" else open_access), check
