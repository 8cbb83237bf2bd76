"""Texts/s of `POST /v1/tasks/redact` through the running platform at concurrency 16, with the trained PII detector on
(called by benchmarks/redaction.py --platform; or alone: python benchmarks/redaction_platform.py [--pii-model DIR|none]).

Starts `switchboard run` on 127.0.0.1:8310 with SWITCHBOARD_MODELS__PII set, the generative engine off (`none`: only
redact and classify-intent are deployed) and the sample tenants' request limits raised (a capacity benchmark measures
the platform, not the sample quotas); ShopRight's key and policy; stops it with SIGINT afterwards.
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


def measure(pii_model: str, texts: list[str], requests: int = 800, concurrency: int = 16) -> dict:
    import httpx

    from throughput import run_level

    with tempfile.TemporaryDirectory() as temp:
        for sample in sorted((ROOT / "manifests" / "samples").glob("*.yaml")):
            (Path(temp) / sample.name).write_text(raise_limits(sample.read_text()))
        model = pii_model if pii_model == "none" else str(Path(pii_model).resolve())
        env = {"SWITCHBOARD_MODELS__PII": model, "SWITCHBOARD_MODELS__GENERATOR_ENGINE": "none",
               "SWITCHBOARD_PROFILES_DIR": temp}
        with Platform(PORT, env=env) as platform:
            async def go() -> dict:
                bodies = [{"text": t} for t in texts]
                async with httpx.AsyncClient(base_url=platform.url, timeout=120,
                                             limits=httpx.Limits(max_connections=64)) as client:
                    await run_level(client, "/v1/tasks/redact", KEYS["shopright"], bodies, 64, concurrency)  # warm-up
                    return await run_level(client, "/v1/tasks/redact", KEYS["shopright"], bodies, requests, concurrency)

            result = asyncio.run(go())
    return {**result, "pii_model": pii_model, "startup_s": platform.startup_s, "loadavg_after": list(os.getloadavg())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pii-model", default=str(ROOT / "models" / "pii-minilm"), help="the detector's folder, or `none`")
    parser.add_argument("--requests", type=int, default=800)
    args = parser.parse_args(argv)
    texts = [r["full_text"] for r in json.loads((DATA / "presidio_synth" / "synth_dataset_v2.json").read_text())]
    print(json.dumps(measure(args.pii_model, texts, args.requests)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
