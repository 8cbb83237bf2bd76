"""A TenantProfile naming a key Secret the router may not read is refused by the operator, with the reason.

Faked: the Cluster door (a dict of Secrets), as the point is the check against the router's Role (router.keySecrets
in the chart, SWITCHBOARD_OPERATOR_KEY_SECRETS for the operator), which would otherwise surface only as a 403 in the
router's log and a tenant whose key never works.
"""

from __future__ import annotations

import copy

from operators.switchboard_operator.__main__ import options_from_env
from operators.switchboard_operator.handlers import check_profile
from tests.k8s_helpers import load_samples


class Secrets:
    def __init__(self, **secrets):
        self.secrets = secrets

    async def secret_has_key(self, namespace, name, key):
        return None if name not in self.secrets else key in self.secrets[name]


def profile(secret: str) -> dict:
    body = copy.deepcopy(load_samples("shopright.yaml")[0])
    body["metadata"]["namespace"] = "switchboard"
    body["spec"]["apiKey"] = {"secretRef": {"name": secret}}
    return body


async def test_a_secret_outside_router_key_secrets_is_refused():
    cluster = Secrets(**{"shopright-key": {"api-key": "x"}, "other-key": {"api-key": "y"}})
    allowed = options_from_env({"SWITCHBOARD_OPERATOR_KEY_SECRETS": "shopright-key"}).key_secrets
    ok, reason, _, message, _ = await check_profile(profile("other-key"), cluster, allowed)
    assert (ok, reason) == (False, "SecretNotReadable")
    assert message == ("spec.apiKey.secretRef: the router may read only the Secrets in router.keySecrets "
                       "(shopright-key), not 'other-key'")
    ok, _, _, _, _ = await check_profile(profile("shopright-key"), cluster, allowed)
    assert ok


async def test_with_no_key_secrets_listed_every_secret_ref_is_refused_and_unrestricted_runs_allow_all():
    cluster = Secrets(**{"shopright-key": {"api-key": "x"}})
    none = options_from_env({"SWITCHBOARD_OPERATOR_KEY_SECRETS": ""}).key_secrets
    assert none == ()
    assert (await check_profile(profile("shopright-key"), cluster, none))[1] == "SecretNotReadable"
    assert (await check_profile(profile("shopright-key"), cluster, None))[0]  # outside the chart: not restricted


async def test_a_narrowed_redaction_policy_is_named_in_the_status():
    """NorthBank lists its own entity types: the status names every default type it leaves in clear, as the router's
    GET /v1/tenants/{id} does, so the team that owns the tenant sees the gap without reading the spec."""
    from serving.vocabulary.entities import DEFAULT_ENTITIES
    from operators.switchboard_operator import status as st

    body = copy.deepcopy(load_samples("northbank.yaml")[0])
    body["metadata"]["namespace"] = "switchboard"
    check = await check_profile(body, Secrets())
    listed = set(body["spec"]["redaction"]["entities"])
    assert check.ok, check.message
    assert set(check.not_redacted) == set(DEFAULT_ENTITIES) - listed and check.not_redacted
    status = st.profile_accepted(None, 1, check.tokens, check.detail, "2026-12-02T00:00:00Z", check.not_redacted)
    assert status["notRedacted"] == list(check.not_redacted)
