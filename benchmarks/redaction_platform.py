"""Texts/s of `POST /v1/tasks/redact` through the running platform at concurrency 16, with the trained PII detector on
(called by benchmarks/redaction.py --platform; or alone: python benchmarks/redaction_platform.py [--pii-model DIR|none]
[--per-request 1 16] [--replicas 1]).

`--per-request N` sends N texts per request (`texts`, as a contact centre redacts a conversation's turns at once; 1 is
`text`); texts/s = requests/s x N. Starts `switchboard run` on 127.0.0.1:8310 with SWITCHBOARD_MODELS__PII set, the
generative engine off (`none`: only redact and classify-intent are deployed), `--replicas` redact replicas, and the
sample tenants' request limits raised (a capacity benchmark measures the platform, not the sample quotas); ShopRight's
key and policy; stops it with SIGINT afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import DATA, KEYS, ROOT, Platform, raise_limits  # noqa: E402

PORT = 8310


def measure(pii_model: str, texts: list[str], requests: int = 800, concurrency: int = 16,
            per_request: tuple[int, ...] = (1,), replicas: int = 2) -> dict:
    """{"levels": [one run_level result per texts-per-request, with texts_per_s], ...}; `requests` counts texts."""
    import httpx

    from throughput import run_level

    with tempfile.TemporaryDirectory() as temp:
        for sample in sorted((ROOT / "manifests" / "samples").glob("*.yaml")):
            (Path(temp) / sample.name).write_text(raise_limits(sample.read_text()))
        model = pii_model if pii_model == "none" else str(Path(pii_model).resolve())
        env = {"SWITCHBOARD_MODELS__PII": model, "SWITCHBOARD_MODELS__GENERATOR_ENGINE": "none",
               "SWITCHBOARD_PROFILES_DIR": temp, "SWITCHBOARD_DEPLOYMENTS__REDACT__MIN_REPLICAS": str(replicas),
               "SWITCHBOARD_DEPLOYMENTS__REDACT__MAX_REPLICAS": str(replicas)}
        with Platform(PORT, env=env) as platform:
            async def go() -> list[dict]:
                levels = []
                async with httpx.AsyncClient(base_url=platform.url, timeout=120,
                                             limits=httpx.Limits(max_connections=64)) as client:
                    for n in per_request:
                        bodies = [{"text": t} for t in texts] if n == 1 else [
                            {"texts": texts[i : i + n]} for i in range(0, len(texts) - n + 1, n)]
                        await run_level(client, "/v1/tasks/redact", KEYS["shopright"], bodies, 64 // n + concurrency,
                                        concurrency)  # warm-up
                        level = await run_level(client, "/v1/tasks/redact", KEYS["shopright"], bodies,
                                                max(requests // n, concurrency), concurrency)
                        levels.append({"texts_per_request": n, "texts_per_s": round(level["ok_rps"] * n, 1), **level})
                return levels

            levels = asyncio.run(go())
    return {"levels": levels, "pii_model": pii_model, "redact_replicas": replicas, "startup_s": platform.startup_s,
            "loadavg_after": list(os.getloadavg())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pii-model", default=str(ROOT / "models" / "pii-minilm"), help="the detector's folder, or `none`")
    parser.add_argument("--requests", type=int, default=800, help="texts per level")
    parser.add_argument("--per-request", type=int, nargs="+", default=[1, 16], help="texts per request, one level each")
    parser.add_argument("--replicas", type=int, default=2, help="redact replicas (2: the local default max)")
    args = parser.parse_args(argv)
    texts = [r["full_text"] for r in json.loads((DATA / "presidio_synth" / "synth_dataset_v2.json").read_text())]
    print(json.dumps(measure(args.pii_model, texts, args.requests, per_request=tuple(args.per_request),
                             replicas=args.replicas)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
