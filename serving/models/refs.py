"""Model references as written in configuration: a local path, a prepared name, a hub id, or an object-store URI."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from serving.errors import ConfigError

RefKind = Literal["local", "prepared", "hub", "s3", "gcs", "pvc"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,95}$")
_HUB_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")
_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_GCS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")
_CLAIM = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_SCHEMES = {"s3": "s3", "gs": "gcs", "pvc": "pvc", "file": "local", "hf": "hub"}


@dataclass(frozen=True)
class ModelRef:
    """A parsed model reference. Which fields are set depends on `kind`:

    - local: `path`;  prepared: `name`;  hub: `repo_id`, `revision` (None = default branch);
    - s3 / gcs: `bucket`, `key` (a prefix holding the model folder);  pvc: `bucket` (the claim), `key` (sub-path).
    """

    kind: RefKind
    raw: str
    path: Path | None = None
    name: str | None = None
    repo_id: str | None = None
    revision: str | None = None
    bucket: str | None = None
    key: str | None = None

    @property
    def needs_network(self) -> bool:
        return self.kind in ("hub", "s3", "gcs")

    @property
    def uri(self) -> str:
        """The canonical spelling of this reference."""
        if self.kind == "local":
            return str(self.path)
        if self.kind == "prepared":
            return str(self.name)
        if self.kind == "hub":
            return f"{self.repo_id}@{self.revision}" if self.revision else str(self.repo_id)
        scheme = {"s3": "s3", "gcs": "gs", "pvc": "pvc"}[self.kind]
        return f"{scheme}://{self.bucket}/{self.key}" if self.key else f"{scheme}://{self.bucket}"

    def cache_name(self) -> str:
        """A folder name (unique per reference) to cache a downloaded copy under."""
        return re.sub(r"[^A-Za-z0-9._-]+", "--", f"{self.kind}--{self.uri}").strip("-")


def parse_model_ref(raw: str) -> ModelRef:
    """Parse a model reference; ConfigError (field "model") says exactly what is wrong.

    Rules: `scheme://` -> s3, gs, pvc, file or hf; a path starting with `/`, `./`, `../` or `~` -> local;
    `org/name[@revision]` -> hub id; a lower-case name without `/` -> prepared name in the model store.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise _bad(raw, "it is empty")
    text = raw.strip()
    if "://" in text:
        return _parse_uri(raw, text)
    if text.startswith(("/", "./", "../", "~")) or text in (".", ".."):
        return ModelRef("local", raw, path=Path(text).expanduser())
    if "/" in text or "@" in text:
        return _parse_hub(raw, text)
    if _NAME.match(text):
        return ModelRef("prepared", raw, name=text)
    raise _bad(
        raw, "a prepared model name uses lower-case letters, digits, '.', '_' and '-' (e.g. smollm2-135m-instruct)"
    )


def _parse_uri(raw: str, text: str) -> ModelRef:
    scheme, _, rest = text.partition("://")
    kind = _SCHEMES.get(scheme.lower())
    if kind is None:
        raise _bad(raw, f"unsupported scheme {scheme!r}; use s3://, gs://, pvc://, hf:// or file://")
    if kind == "local":
        if not rest.startswith("/"):
            raise _bad(raw, "a file:// URI needs an absolute path (file:///models/x)")
        return ModelRef("local", raw, path=Path(rest))
    if kind == "hub":
        return _parse_hub(raw, rest)
    bucket, _, key = rest.partition("/")
    key = _clean_key(raw, key)
    if kind == "pvc":
        if not _CLAIM.match(bucket):
            raise _bad(raw, f"{bucket!r} is not a valid PersistentVolumeClaim name (DNS-1123 label)")
        return ModelRef("pvc", raw, bucket=bucket, key=key)
    pattern = _S3_BUCKET if kind == "s3" else _GCS_BUCKET
    if not pattern.match(bucket) or ".." in bucket:
        raise _bad(raw, f"{bucket!r} is not a valid bucket name (3-63 lower-case letters, digits, '.', '-')")
    if not key:
        raise _bad(raw, "give the folder that holds the model after the bucket (s3://bucket/path/to/model)")
    return ModelRef("s3" if kind == "s3" else "gcs", raw, bucket=bucket, key=key)


def _parse_hub(raw: str, text: str) -> ModelRef:
    repo_id, at, revision = text.partition("@")
    parts = repo_id.split("/")
    if len(parts) != 2:
        hint = "write relative paths as ./a/b/c" if len(parts) > 2 else "a hub id is org/name"
        raise _bad(raw, f"{repo_id!r} is neither a hub id (org/name[@revision]) nor a local path; {hint}")
    for part in parts:
        if not _HUB_PART.match(part) or "--" in part or ".." in part or part.endswith("."):
            raise _bad(raw, f"{part!r} is not a valid hub organisation or model name")
    if at and (not _REVISION.match(revision) or ".." in revision):
        raise _bad(raw, f"{revision!r} is not a valid revision (a branch, tag or commit hash after '@')")
    return ModelRef("hub", raw, repo_id=repo_id, revision=revision or None)


def _clean_key(raw: str, key: str) -> str:
    key = key.strip("/")
    if key and any(part in ("", ".", "..") for part in key.split("/")):
        raise _bad(raw, "the path after the bucket must not contain '.', '..' or empty segments")
    return key


def _bad(raw: object, why: str) -> ConfigError:
    return ConfigError(f"invalid model reference {raw!r}: {why}", field="model")
