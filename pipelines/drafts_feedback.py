"""A merchant's rejections and edits as feedback: eval cases for the prompt version, and AI Gateway's log.

Each rejection or edited approval is kept under the prompt that made the draft
(`wandstore:feedback:{prompt}`, newest last, the last `KEEP` of them) with its prompt
version, the reason and the changes. `cases()` turns them into `prompts eval` cases (the
product as input; the phrases the merchant removed must not come back); `drafts feedback
PROMPT --cases FILE` writes them. When a Cloudflare API token is set (`CF_API_TOKEN`), the
worker also marks the gateway's log of every call behind the draft with the feedback
(`PATCH {CF_API_BASE_URL}/accounts/{account}/ai-gateway/gateways/{gateway}/logs/{cf-aig-log-id}`,
`{"feedback": -1|1, "score", "metadata"}`).
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import redis

from adapters.errors import BrokerUnavailable, TransientGatewayError
from adapters.logs import get_logger
from adapters.settings import Settings
from domain.sanitize import html_to_text
from pipelines.drafts import Drafts
from pipelines.publish import now_iso

PREFIX = "wandstore:feedback:"
KEEP = 5000
MAX_LOGS = 20  # calls of one draft marked at most (a theme build makes about fifteen)
log = get_logger("pipelines.drafts_feedback")
_WORD = re.compile(r"[\w'-]+", re.UNICODE)


def _prompt_of(draft: dict[str, Any]) -> str:
    meta = draft.get("meta") or {}
    return str(meta.get("prompt") or ("theme_build" if draft["kind"] == "theme" else "product_copy"))


def record_feedback(
    client: redis.Redis,
    drafts: Drafts,
    draft: dict[str, Any],
    *,
    action: str,
    by: str,
    reason: str | None,
    changes: list[dict[str, Any]] | None,
    to_gateway: bool = False,
) -> dict[str, Any]:
    """Keep one piece of feedback with the draft's prompt version; with `to_gateway`, its logs are due.

    `to_gateway`: a Cloudflare API token is configured (the worker then marks the gateway's logs).
    """
    meta = draft.get("meta") or {}
    record = {
        "prompt": _prompt_of(draft),
        "prompt_version": meta.get("prompt_version"),
        "prompt_ref": meta.get("prompt_ref"),
        "model": meta.get("model"),
        "store": draft["store"],
        "draft_id": draft["id"],
        "kind": draft["kind"],
        "product_id": draft.get("product_id"),
        "build_id": draft.get("build_id"),
        "action": action,
        "reason": reason,
        "changes": changes,
        "by": by,
        "at": now_iso(),
        "body": draft.get("body") if draft["kind"] == "copy" else None,
        "product": (draft.get("source") or {}).get("product"),
        "options": {"locale": meta.get("locale")} if meta.get("locale") else {},
    }
    key = PREFIX + record["prompt"]
    try:
        pipe = client.pipeline(transaction=False)
        pipe.rpush(key, json.dumps(record, ensure_ascii=False))
        pipe.ltrim(key, -KEEP, -1)
        pipe.execute()
    except redis.RedisError as exc:
        raise BrokerUnavailable(f"could not keep the feedback in Redis: {exc}") from None
    logs = list(meta.get("gateway_log_ids") or [])[:MAX_LOGS] if to_gateway else []
    drafts.set_fields(
        draft["store"],
        draft["id"],
        feedback={"action": action, "at": record["at"], "gateway": "pending" if logs else "off"},
    )
    return record


def feedback(client: redis.Redis, prompt: str, version: str | None = None) -> list[dict[str, Any]]:
    """The feedback kept for `prompt` (one version's, or every version's), oldest first."""
    try:
        raw = client.lrange(PREFIX + prompt, 0, -1)
    except redis.RedisError as exc:
        raise BrokerUnavailable(f"could not read the feedback from Redis: {exc}") from None
    rows = [json.loads(r) for r in raw]
    return [r for r in rows if version is None or r.get("prompt_version") == version]


def _removed_words(changes: list[dict[str, Any]] | None) -> list[str]:
    """Words the merchant took out of the title, description or SEO text (what must not come back)."""
    gone: list[str] = []
    for change in changes or []:
        if change["field"] not in ("title", "description_html", "seo_title", "meta_description"):
            continue
        before = set(_WORD.findall(html_to_text(str(change["before"] or "")).lower()))
        after = set(_WORD.findall(html_to_text(str(change["after"] or "")).lower()))
        gone += sorted(w for w in before - after if len(w) > 3)
    return list(dict.fromkeys(gone))[:10]


def cases(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`prompts eval` cases (agents/evals/cases.py) from copy feedback that kept its product."""
    out = []
    for row in rows:
        if row.get("kind") != "copy" or not row.get("product"):
            continue
        asserts: list[dict[str, Any]] = [{"type": "schema_valid"}, {"type": "grounded"}]
        removed = _removed_words(row.get("changes"))
        if removed:
            asserts.append({"type": "must_not_contain", "values": removed})
        out.append(
            {
                "id": f"feedback-{row['action']}-{row['draft_id'][:8]}",
                "store": row["store"],
                "input": row["product"],
                "options": row.get("options") or {},
                "assert": asserts,
                "note": f"{row['action']} of {row.get('prompt_ref')}: {row.get('reason') or ''}"[:300],
            }
        )
    return out


# --- AI Gateway's log of the calls behind a draft --------------------------------------------


def gateway_feedback_url(settings: Settings, log_id: str) -> str:
    account = settings.cf_account_id or "dev"
    base = settings.cf_api_base_url.rstrip("/")
    return f"{base}/accounts/{account}/ai-gateway/gateways/{settings.ai_gateway_id}/logs/{log_id}"


def send_gateway_feedback(settings: Settings, drafts: Drafts, store: str, draft_id: str) -> str:
    """Mark the gateway logs of a decided draft (once); returns `sent`, `off` or `skipped`."""
    state = drafts.state(store, draft_id)
    due = state.get("feedback") or {}
    if due.get("gateway") != "pending":
        return "skipped"
    if settings.cf_api_token is None:
        drafts.set_fields(store, draft_id, feedback={**due, "gateway": "off"})
        return "off"
    draft = drafts.get(store, draft_id)
    logs = list((draft.get("meta") or {}).get("gateway_log_ids") or [])[:MAX_LOGS]
    body = {
        "feedback": -1 if due.get("action") == "reject" else 1,
        # An edit approved the draft but changed it: a middling score; a rejection none.
        "score": 0 if due.get("action") == "reject" else 50,
        "metadata": {"store": store, "draft_id": draft_id, "action": str(due.get("action"))},
    }
    headers = {"Authorization": f"Bearer {settings.cf_api_token.get_secret_value()}"}
    marked = 0
    with httpx.Client(timeout=settings.gateway_timeout_s) as http:
        for log_id in logs:
            try:
                answer = http.patch(gateway_feedback_url(settings, log_id), json=body, headers=headers)
            except httpx.HTTPError as exc:
                raise TransientGatewayError(f"AI Gateway's feedback API: {type(exc).__name__}") from None
            if answer.status_code == 429 or answer.status_code >= 500:
                raise TransientGatewayError(f"AI Gateway's feedback API answered {answer.status_code}")
            if answer.status_code == 200:
                marked += 1
            else:  # a log the gateway no longer keeps: nothing to retry
                log.warning("gateway_feedback_refused", log_id=log_id, status=answer.status_code)
    drafts.set_fields(store, draft_id, feedback={**due, "gateway": "sent", "logs": marked})
    log.info("gateway_feedback_sent", store=store, draft_id=draft_id, logs=marked)
    return "sent"
