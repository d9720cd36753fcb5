"""The admin prefix /__sandbox__/: the test and benchmark hooks over HTTP, for other processes.

GET  state | requests[?method=&path=&since=] | counters | records/<resource> | holds
POST fail_next | expire_tokens | revoke_refresh_token | seed | reset | configure | clock
     hold {method, path, times, when, timeout} | hold_wait {id, timeout, count} | release {id} (no id: all)
Bodies and answers are JSON; errors are {"error": "..."} with 400/404/405 (Zoho refusals add their "code").
No auth, no limits (by design: the sandbox listens on 127.0.0.1 and holds only demo data).
POST Zoho-side actions (actions.py), the body being the method's keyword arguments, the answer {"ok", <key>}:
     edit_record {resource, record_id, fields} -> record | delete_record {resource, record_id} -> record
     drop_webhooks {n} -> drops_pending
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from zoho_sync.sandbox.actions import GENERIC
from zoho_sync.sandbox.errors import ApiError
from zoho_sync.sandbox.resources import ACTIONS as RESOURCE_ACTIONS

if TYPE_CHECKING:
    from zoho_sync.sandbox.app import Answer
    from zoho_sync.sandbox.sandbox import ZohoSandbox

GETS = ("state", "requests", "counters", "records", "holds")
# Zoho-side action -> the key its result is answered under: each resource's (its Resource row), then the generic.
ACTIONS: dict[str, str] = {**{name: action.answer for name, action in RESOURCE_ACTIONS.items()}, **GENERIC}
POSTS = ("fail_next", "expire_tokens", "revoke_refresh_token", "seed", "reset", "configure", "clock", "hold",
         "hold_wait", "release", *ACTIONS)


class AdminApi:
    def __init__(self, sandbox: ZohoSandbox) -> None:
        self.sb = sandbox

    def handle(self, method: str, path: str, query: dict[str, str], raw: bytes) -> Answer:
        from zoho_sync.sandbox.app import Answer

        parts = [p for p in path.split("/") if p]
        name = parts[0] if parts else ""
        if name not in GETS + POSTS:
            return Answer(404, {"error": f"unknown admin endpoint {path!r}; GET {GETS}, POST {POSTS}"})
        if (method == "GET") != (name in GETS):
            return Answer(405, {"error": f"{name} takes {'GET' if name in GETS else 'POST'}"})
        try:
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            if name in ACTIONS:
                result = {ACTIONS[name]: getattr(self.sb, name)(**body)}
            else:
                result = getattr(self, f"_{name}")(parts[1:], query, body)
        except (ValueError, TypeError, KeyError) as exc:
            return Answer(400, {"error": str(exc)})
        except ApiError as exc:
            return Answer(404 if exc.status == 404 else 400, {"error": exc.message, "code": exc.code.code})
        return Answer(200, {"ok": True, **result})

    def _state(self, parts: list[str], query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        return self.sb.state()

    def _requests(self, parts: list[str], query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        entries = self.sb.requests(query.get("method"), query.get("path"), since=int(query.get("since", 0)))
        return {"requests": entries}

    def _counters(self, parts: list[str], query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        return {"counters": self.sb.counters()}

    def _records(self, parts: list[str], query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if len(parts) != 1:
            raise ValueError("use /__sandbox__/records/<resource>")
        return {"records": self.sb.records(parts[0])}

    def _fail_next(self, parts: list[str], query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        rule = self.sb.fail_next(body.pop("method", "*"), body.pop("path"), **body)
        return {"rule": rule.as_dict()}

    def _expire_tokens(self, parts: list[str], query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        return {"expired": self.sb.expire_tokens()}

    def _revoke_refresh_token(self, parts: list[str], query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        self.sb.revoke_refresh_token(body.get("refresh_token"))
        return {}

    def _seed(self, parts: list[str], query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        return {"records": self.sb.seed(body["resource"], body["records"])}

    def _reset(self, parts: list[str], query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        self.sb.reset()
        return {}

    def _configure(self, parts: list[str], query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        self.sb.configure(**body)
        return {"config": self.sb.config.as_dict()}

    def _clock(self, parts: list[str], query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if "advance" in body:
            self.sb.advance(float(body["advance"]))
        elif "set" in body:
            self.sb.set_time(float(body["set"]))
        return {"now": self.sb.clock.time()}

    def _holds(self, parts: list[str], query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        return {"holds": self.sb.holds.pending()}

    def _hold(self, parts: list[str], query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        hold = self.sb.hold_next(body.pop("method", "*"), body.pop("path"), **body)
        return {"hold": hold.as_dict()}

    def _hold_wait(self, parts: list[str], query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        hold = self.sb.holds.get(int(body["id"]))
        arrived = hold.wait_arrived(float(body.get("timeout", 5.0)), count=int(body.get("count", 1)))
        return {"arrived": arrived, "hold": hold.as_dict()}

    def _release(self, parts: list[str], query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if body.get("id") is None:
            return {"released": self.sb.holds.release_all()}
        self.sb.holds.get(int(body["id"])).release()
        return {"released": 1}


# Each resource's actions, listed in the docstring from their signatures (`manage.py zoho_sandbox --help` shows it).
__doc__ = (__doc__ or "") + "".join(f"     {action.usage()}\n" for action in RESOURCE_ACTIONS.values())
