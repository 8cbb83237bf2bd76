"""Tenant profiles: schema, compilation into short per-task instructions, the registry and its sources."""

from serving.profiles.compiler import (
    CompiledInstruction,
    CompiledProfile,
    approximate_counter,
    compile_profile,
    load_documents,
    parse_document,
    wordpiece_counter,
)
from serving.profiles.model import (
    API_VERSION,
    KIND,
    TenantProfileDocument,
    TenantProfileSpec,
    hash_api_key,
    spec_version,
)
from serving.profiles.registry import ProfileRegistry, ProfileStatus, spec_key_hash
from serving.profiles.source import FolderProfileSource, ProfileSource

__all__ = [
    "API_VERSION",
    "KIND",
    "CompiledInstruction",
    "CompiledProfile",
    "FolderProfileSource",
    "ProfileRegistry",
    "ProfileSource",
    "ProfileStatus",
    "TenantProfileDocument",
    "TenantProfileSpec",
    "approximate_counter",
    "compile_profile",
    "hash_api_key",
    "load_documents",
    "parse_document",
    "spec_key_hash",
    "spec_version",
    "wordpiece_counter",
]
