"""A separate process that serves flags the way a product service would: the real
OpenFeature flagd provider in FILE mode. It prints one JSON line per change of what it
serves, stamped with time.time(). Usage: provider_probe.py FLAGS_JSON"""

from __future__ import annotations

import json
import sys
import time

from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext

USERS = [f"user-{i}" for i in range(200)]


def served(client) -> dict:
    canary = {
        client.get_string_value("doc-summarizer-canary", "control", EvaluationContext(u)) for u in USERS
    }
    return {
        "support-reply-enabled": client.get_boolean_value("support-reply-enabled", False),
        "doc-summarizer-canary": sorted(canary),
        "search-answers-model": client.get_string_value("search-answers-model", "gpt-4o"),
        "support-reply-prompt": client.get_string_value("support-reply-prompt", "v8"),
    }


def main(path: str) -> None:
    provider = FlagdProvider(resolver_type=ResolverType.FILE, offline_flag_source_path=path, deadline_ms=100)
    api.set_provider_and_wait(provider)
    client = api.get_client()
    last = None
    while True:
        now = served(client)
        if now != last:
            print(json.dumps({"t": time.time(), "served": now}), flush=True)
            last = now
        time.sleep(0.02)


if __name__ == "__main__":
    main(sys.argv[1])
