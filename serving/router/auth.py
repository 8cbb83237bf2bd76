"""Bearer-key authentication: API key -> the tenant's compiled profile (keys are compared as hashes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from serving.errors import Unauthenticated
from serving.profiles.compiler import CompiledProfile
from serving.telemetry import tracing


def bearer_key(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise Unauthenticated("missing Authorization header; send `Authorization: Bearer <API key>`")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthenticated("malformed Authorization header; expected `Bearer <API key>`")
    return key.strip()


async def authenticate(request: Request) -> CompiledProfile:
    with tracing.step("authenticate"):
        profile = request.app.state.ctx.registry.authenticate(bearer_key(request))
        tracing.annotate(tenant=profile.tenant_id, profile_version=profile.version)
    request.scope["state"].setdefault("log", {}).update(tenant=profile.tenant_id, profile_version=profile.version)
    return profile


Tenant = Annotated[CompiledProfile, Depends(authenticate)]
"""Route parameter type: the authenticated caller's compiled profile."""
