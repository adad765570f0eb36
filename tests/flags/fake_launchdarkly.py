"""A loopback HTTP server following LaunchDarkly's documented REST API v2 for the calls the
console makes: GET a flag, PATCH it with a semantic patch, GET the audit log. LaunchDarkly
itself cannot be reached from the test machines; this server answers as its API reference
describes (401 for a bad token, 404 for an unknown flag, 400 for a malformed patch).

`ignore_writes` makes it accept patches without applying them (as with a pending approval),
for read-back tests."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

SEMANTIC = "application/json; domain-model=launchdarkly.semanticpatch"


def flag(
    key: str,
    values: list[Any],
    *,
    served: int = 0,
    on: bool = True,
    rollout: dict[int, int] | None = None,
    names: list[str] | None = None,
) -> dict:
    variations = [
        {"_id": uuid.uuid4().hex, "value": v, **({"name": names[i]} if names else {})}
        for i, v in enumerate(values)
    ]
    fallthrough: dict[str, Any] = {"variation": served}
    if rollout:
        fallthrough = {"rollout": {"variations": [{"variation": i, "weight": w} for i, w in rollout.items()]}}
    env = {
        "on": on,
        "fallthrough": fallthrough,
        "offVariation": len(values) - 1,
        "_version": 1,
        "rules": [],
        "targets": [],
    }
    kind = "boolean" if all(isinstance(v, bool) for v in values) else "multivariate"
    return {
        "key": key,
        "name": key,
        "kind": kind,
        "_version": 1,
        "variations": variations,
        "environments": {"production": json.loads(json.dumps(env)), "test": json.loads(json.dumps(env))},
    }


class FakeLaunchDarkly:
    def __init__(self, token: str, project: str = "default") -> None:
        self.token, self.project = token, project
        self.flags: dict[str, dict] = {}
        self.audit: list[dict] = []
        self.ignore_writes = False
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                fake._serve(self, "GET")

            def do_PATCH(self) -> None:
                fake._serve(self, "PATCH")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add(self, doc: dict) -> None:
        self.flags[doc["key"]] = doc

    def _serve(self, h: BaseHTTPRequestHandler, method: str) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        if h.headers.get("Authorization") != self.token:
            return _reply(h, 401, {"code": "unauthorized", "message": "Invalid access token"})
        url = urlparse(h.path)
        parts = url.path.strip("/").split("/")
        if parts[:3] == ["api", "v2", "auditlog"] and method == "GET":
            after = int(parse_qs(url.query).get("after", ["0"])[0])
            items = [i for i in self.audit if i["date"] >= after]
            return _reply(h, 200, {"items": list(reversed(items)), "totalCount": len(items)})
        if len(parts) != 5 or parts[:3] != ["api", "v2", "flags"] or parts[3] != self.project:
            return _reply(h, 404, {"code": "not_found", "message": "Unknown resource"})
        doc = self.flags.get(parts[4])
        if doc is None:
            return _reply(h, 404, {"code": "not_found", "message": "Unknown resource"})
        if method == "GET":
            return _reply(h, 200, doc)
        if h.headers.get("Content-Type") != SEMANTIC:
            return _reply(h, 400, {"code": "invalid_request", "message": "expected semantic patch"})
        try:
            with self.lock:
                self._apply(doc, json.loads(body))
        except (KeyError, ValueError) as exc:
            return _reply(h, 400, {"code": "invalid_request", "message": str(exc)})
        return _reply(h, 200, doc)

    def _apply(self, doc: dict, patch: dict) -> None:
        env = doc["environments"][patch["environmentKey"]]
        ids = [v["_id"] for v in doc["variations"]]
        updated = json.loads(json.dumps(env))
        for ins in patch["instructions"]:
            kind = ins["kind"]
            if kind in ("turnFlagOn", "turnFlagOff"):
                updated["on"] = kind == "turnFlagOn"
            elif kind == "updateFallthroughVariationOrRollout" and "variationId" in ins:
                updated["fallthrough"] = {"variation": ids.index(ins["variationId"])}
            elif kind == "updateFallthroughVariationOrRollout" and "rolloutWeights" in ins:
                weights = ins["rolloutWeights"]
                if sum(weights.values()) != 100_000:
                    raise ValueError("rollout weights must sum to 100000")
                updated["fallthrough"] = {
                    "rollout": {
                        "variations": [{"variation": ids.index(i), "weight": w} for i, w in weights.items()]
                    }
                }
            else:
                raise ValueError(f"unsupported instruction {kind}")
        if self.ignore_writes:
            return
        env.update(updated)
        env["_version"] += 1
        doc["_version"] += 1
        self.audit.append(
            {
                "_id": uuid.uuid4().hex,
                "date": int(time.time() * 1000),
                "kind": "flag",
                "name": doc["key"],
                "comment": patch.get("comment", ""),
                "titleVerb": "updated the flag",
                "member": {"email": "api@example.com"},
                "target": {
                    "resources": [f"proj/{self.project}:env/{patch['environmentKey']}:flag/{doc['key']}"]
                },
            }
        )


def _reply(h: BaseHTTPRequestHandler, status: int, doc: Any) -> None:
    data = json.dumps(doc).encode()
    try:
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
