"""Entry for `kopf run -m operators.switchboard_operator.run`: registers the handlers on kopf's default registry."""

from __future__ import annotations

import os

import kopf

from operators.switchboard_operator.__main__ import api_client, options_from_env
from operators.switchboard_operator.cluster import Cluster
from operators.switchboard_operator.handlers import register

register(kopf.get_default_registry(), Cluster(api_client()), options_from_env(dict(os.environ)))
