"""A drafts prune cut short by the bucket: no draft left without its body, no body left behind.

The retention pass (`pipelines/drafts_retention.py`) removes an old decided copy draft's row,
then its body, then its index entry. Here the bucket (moto behind the failing S3 stand-in)
answers the body's delete with 503s, as R2 does when it is overloaded.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.faults.conftest import R2World
from tests.faults.s3proxy import Rule
from tests.fixtures.drafts import old_draft

STORE = "prune-fault"
DAY_S = 86_400.0


def _old_rejected_draft(r2: R2World, objects: Any, n: int) -> str:
    from pipelines.drafts import Drafts

    draft = old_draft(n, store=STORE)
    drafts = Drafts(r2.env.client, objects)
    drafts.propose(draft, f"copy:p{n}")
    drafts.move(STORE, draft["id"], allowed=("pending",), to="rejected", decision={"action": "reject"})
    return str(draft["id"])


def test_a_prune_cut_short_by_the_bucket_orphans_no_body(r2: R2World) -> None:
    from adapters.errors import StoreError
    from domain.drafts import draft_key
    from pipelines.drafts import INDEX, PREFIX, Drafts
    from pipelines.drafts_retention import prune
    from tests.faults.test_store_faults import proxy_store

    objects = proxy_store(r2)  # the bucket as the worker reaches it: through the stand-in
    draft_id = _old_rejected_draft(r2, objects, 1)
    key = draft_key(STORE, draft_id)
    later = time.time() + 2 * DAY_S  # the draft was decided more than a day before this pass
    assert r2.env.reader.exists(key)

    # Given the bucket answers every attempt at the body's delete with a 503
    r2.proxy.plan(Rule("DELETE", key, "503", times=20))
    # When a pass with a day's retention runs, it stops with the bucket's error
    with pytest.raises(StoreError):
        prune(r2.env.client, objects, older_than_s=DAY_S, now=later, stores=[STORE])
    # Then the row is gone (no listing shows the draft), and its body and index entry are left
    assert r2.proxy.requests[("DELETE", f"/{r2.bucket}/{key}")] >= 1
    assert r2.env.client.exists(f"{PREFIX}{STORE}:{draft_id}") == 0
    assert Drafts(r2.env.client, objects).list(STORE) == []
    assert r2.env.reader.exists(key)
    assert r2.env.client.zscore(INDEX + STORE, draft_id) is not None

    # When the bucket is back and the next pass runs
    r2.proxy.reset()
    prune(r2.env.client, objects, older_than_s=DAY_S, now=later, stores=[STORE])
    # Then the body and the index entry are gone too: nothing is left behind
    assert not r2.env.reader.exists(key)
    assert r2.env.client.zscore(INDEX + STORE, draft_id) is None
    # And a pass after it finds nothing
    again = prune(r2.env.client, objects, older_than_s=DAY_S, now=later, stores=[STORE])
    assert (again.checked, again.pruned) == (0, 0)
