#!/usr/bin/env python3
"""Checks that Segment's official Python library (`segment-analytics-python`, imported
as `segment.analytics`) works against a running Nudge server.

Run by crates/nudge/tests/sdk.rs (install the library with scripts/install-test-deps).
Environment:
  NUDGE_URL        base URL of the server, e.g. http://127.0.0.1:8080
  NUDGE_WRITE_KEY  a write key registered on it (tracking API, HTTP Basic username)
  NUDGE_ADMIN_KEY  an admin key registered on it (admin API, Bearer)
  RUN_ID           unique per run; all ids the script sends are derived from it

The story, sent in the SDK's normal asynchronous batching mode (`sync_mode=False`,
so everything goes through `/v1/batch`):
  1. a legacy account OLD identifies with its own traits and has an event;
  2. an anonymous visitor A views a page and tracks events;
  3. A identifies as user U (traits);
  4. U tracks events (nested objects, an explicit datetime timestamp), a screen,
     a group, and identifies again (a `None` trait removes that trait);
  5. alias(previous_id=OLD, user_id=U) merges the legacy account into U.
Then, through the admin API, every call must be one event on U's timeline with the
right type, name and body; U's traits are the merge of both identifies and of OLD's;
A and OLD resolve to U; the SDK reported no error. Exits 1 with the list of
mismatches otherwise.
"""

import datetime
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import segment.analytics as analytics
from segment.analytics import request as segment_request


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"sdk_test.py: environment variable {name} is required")
    return value


NUDGE_URL = env("NUDGE_URL").rstrip("/")
WRITE_KEY = env("NUDGE_WRITE_KEY")
ADMIN_KEY = env("NUDGE_ADMIN_KEY")
RUN_ID = env("RUN_ID")

ANON = f"py-anon-{RUN_ID}"
USER = f"py-user-{RUN_ID}"
OLD = f"py-legacy-{RUN_ID}"
GROUP = f"py-group-{RUN_ID}"
EMAIL = f"Ada.{RUN_ID}@Example.com"
ORDER_TS = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)

# --- What the SDK reports -----------------------------------------------------------

sdk_errors = []  # (error, message ids) from on_error
http_log = []  # (method, url, status, number of messages in the request body)


def on_error(error, batch):
    sdk_errors.append((repr(error), [m.get("messageId") for m in batch]))


def record_response(response, *args, **kwargs):
    try:
        body = json.loads(response.request.body or b"{}")
        size = len(body.get("batch", []))
    except (ValueError, TypeError, AttributeError):
        size = -1
    http_log.append((response.request.method, response.url, response.status_code, size, response.text[:300]))


# The SDK posts through one module-level requests session: watch its responses.
segment_request._session.hooks["response"].append(record_response)

analytics.write_key = WRITE_KEY
analytics.host = NUDGE_URL
analytics.sync_mode = False
analytics.debug = True
analytics.on_error = on_error
analytics.max_retries = 3

# --- The story ----------------------------------------------------------------------

expected = []  # one dict per call, in the order of the calls


def send(kind, check, **kwargs):
    """Calls `analytics.<kind>(**kwargs)` and records what Nudge must show for it."""
    ok, msg = getattr(analytics, kind)(**kwargs)
    if not ok:
        sys.exit(f"sdk_test.py: the SDK refused to queue {kind} {kwargs!r}")
    check = dict(check, type=kind, message_id=msg["messageId"])
    check.setdefault("user_id", kwargs.get("user_id"))
    check.setdefault("anonymous_id", kwargs.get("anonymous_id"))
    expected.append(check)


# 1. The legacy account.
legacy_traits = {"name": "Ada (legacy account)", "legacy_plan": "basic", "signup_source": "newsletter"}
send("identify", {"traits": legacy_traits}, user_id=OLD, traits=legacy_traits)
send("track", {"event": "Legacy Login", "properties": {"method": "password"}},
     user_id=OLD, event="Legacy Login", properties={"method": "password"})
analytics.flush()

# 2. The anonymous visitor.
send("page", {"name": "Pricing", "properties": {"path": "/pricing", "referrer": "https://search.example/", "category": "Marketing"}},
     anonymous_id=ANON, category="Marketing", name="Pricing", properties={"path": "/pricing", "referrer": "https://search.example/"})
send("track", {"event": "Plan Viewed", "properties": {"plan": "pro", "price": 49.5, "annual": False}},
     anonymous_id=ANON, event="Plan Viewed", properties={"plan": "pro", "price": 49.5, "annual": False})
send("track", {"event": "Signup Started", "properties": {}}, anonymous_id=ANON, event="Signup Started")
analytics.flush()

# 3. The visitor signs up.
first_traits = {
    "name": "Ada Lovelace",
    "email": EMAIL,
    "plan": "trial",
    "temporary_flag": True,
    "company": {"name": "Analytical Engines", "size": 12, "tags": ["math", "engines"]},
}
send("identify", {"traits": first_traits}, user_id=USER, anonymous_id=ANON, traits=first_traits)
analytics.flush()

# 4. The known user.
order = {
    "order_id": f"order-{RUN_ID}",
    "total": 99.95,
    "currency": "EUR",
    "products": [{"sku": "bern-1", "quantity": 2, "price": 30}, {"sku": "bab-2", "quantity": 1, "price": 39.95}],
    "shipping": {"method": "express", "address": {"city": "London", "postcode": "N1 9GU"}},
    "deliver_by": datetime.date(2024, 1, 5),
}
order_json = dict(order, deliver_by="2024-01-05")
send("track", {"event": "Order Completed", "properties": order_json, "original_timestamp": "2024-01-02T03:04:05.000Z"},
     user_id=USER, event="Order Completed", properties=order, timestamp=ORDER_TS)
send("track", {"event": "Coupon Applied", "properties": {"code": "WELCOME", "discount": 0.1, "first_order": True}},
     user_id=USER, event="Coupon Applied", properties={"code": "WELCOME", "discount": 0.1, "first_order": True})
send("screen", {"name": "Settings", "properties": {"tab": "billing", "category": "Account"}},
     user_id=USER, category="Account", name="Settings", properties={"tab": "billing"})
group_traits = {"name": "Analytical Engines", "plan": "enterprise", "employees": 12}
send("group", {"traits": group_traits, "group_id": GROUP}, user_id=USER, group_id=GROUP, traits=group_traits)
second_traits = {"plan": "pro", "temporary_flag": None, "age": 36}
send("identify", {"traits": second_traits}, user_id=USER, traits=second_traits)
analytics.flush()

# 5. The legacy account is the same person.
send("alias", {"previous_id": OLD}, previous_id=OLD, user_id=USER)
analytics.flush()
analytics.shutdown()

# --- Verification through the admin API -----------------------------------------------


def admin_get(path, **params):
    """GET an admin API path: (status, parsed JSON body or text)."""
    url = f"{NUDGE_URL}{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")


def parse_ts(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def check_all():
    """Returns the list of mismatches (empty when everything is as expected)."""
    problems = []
    status, contact = admin_get("/api/v1/contacts/lookup", user_id=USER)
    if status != 200:
        return [f"lookup user_id={USER}: HTTP {status} {contact}"]
    cid = contact["id"]
    status, page = admin_get(f"/api/v1/contacts/{cid}/events", limit=500)
    if status != 200:
        return [f"events of contact {cid}: HTTP {status} {page}"]
    events = page["data"]
    if len(events) != len(expected):
        problems.append(
            f"contact {cid} has {len(events)} events, expected exactly {len(expected)} "
            f"(types seen: {sorted(e['type'] + ':' + str(e.get('event') or e.get('name')) for e in events)})"
        )
    by_id = {}
    for e in events:
        if e["message_id"] in by_id:
            problems.append(f"message {e['message_id']} is on the timeline twice")
        by_id[e["message_id"]] = e

    for want in expected:
        mid, kind = want["message_id"], want["type"]
        got = by_id.get(mid)
        label = f"{kind} {want.get('event') or want.get('name') or ''} ({mid})"
        if got is None:
            problems.append(f"{label}: not on the timeline of contact {cid}")
            continue

        def same(field, actual, wanted):
            if actual != wanted:
                problems.append(f"{label}: {field} is {json.dumps(actual)}, expected {json.dumps(wanted)}")

        same("type", got["type"], kind)
        same("user_id", got.get("user_id"), want["user_id"])
        same("anonymous_id", got.get("anonymous_id"), want["anonymous_id"])
        if kind == "track":
            same("event", got.get("event"), want["event"])
        if kind in ("page", "screen"):
            same("name", got.get("name"), want["name"])
        if "properties" in want:
            same("properties", got.get("properties"), want["properties"])
        if "traits" in want:
            same("traits", got.get("traits"), want["traits"])
        if "group_id" in want:
            same("groupId", got.get("groupId"), want["group_id"])
        if "previous_id" in want:
            same("previousId", got.get("previousId"), want["previous_id"])
        library = (got.get("context") or {}).get("library") or {}
        same("context.library.name", library.get("name"), "analytics-python")
        if "original_timestamp" in want:
            same("originalTimestamp", got.get("originalTimestamp"), want["original_timestamp"])
            # The server corrects for clock skew with sentAt, so the stored timestamp
            # is the sent one give or take the time the request took.
            skew = abs((parse_ts(got["timestamp"]) - ORDER_TS).total_seconds())
            if skew > 60:
                problems.append(f"{label}: timestamp {got['timestamp']} is {skew:.0f}s away from {ORDER_TS.isoformat()}")

    # The profile: both identifies merged (None removed a trait), then the legacy
    # account's traits filled in where U had none.
    want_traits = {
        "name": "Ada Lovelace",
        "email": EMAIL,
        "plan": "pro",
        "company": first_traits["company"],
        "age": 36,
        "legacy_plan": "basic",
        "signup_source": "newsletter",
    }
    # The one order, kept as traits Nudge owns: counted once, its total as revenue,
    # the stored (skew-corrected) event time as first and last order.
    stored_orders = [e for e in events if e["type"] == "track" and e.get("event") == "Order Completed"]
    if len(stored_orders) == 1:
        at = stored_orders[0]["timestamp"]
        want_traits.update({"orders_count": 1, "orders_revenue": order["total"],
                            "first_order_at": at, "last_order_at": at})
    else:
        problems.append(f"{len(stored_orders)} Order Completed events stored, expected 1")
    if contact["traits"] != want_traits:
        problems.append(f"contact traits are {json.dumps(contact['traits'], sort_keys=True)}, expected {json.dumps(want_traits, sort_keys=True)}")
    if contact["user_id"] != USER:
        problems.append(f"contact user_id is {contact['user_id']!r}, expected {USER!r}")
    if contact["email"] != EMAIL.lower():
        problems.append(f"contact email is {contact['email']!r}, expected {EMAIL.lower()!r}")
    if ANON not in contact["anonymous_ids"]:
        problems.append(f"contact anonymous_ids {contact['anonymous_ids']} lack {ANON!r}")
    if OLD not in contact["alias_user_ids"]:
        problems.append(f"contact alias_user_ids {contact['alias_user_ids']} lack {OLD!r}")
    for key, value in (("anonymous_id", ANON), ("user_id", OLD)):
        status, other = admin_get("/api/v1/contacts/lookup", **{key: value})
        if status != 200 or other.get("id") != cid:
            problems.append(f"lookup {key}={value}: expected contact {cid}, got HTTP {status} {other}")
    for user in (USER, OLD):
        status, listing = admin_get("/api/v1/contacts", user_id=user)
        ids = [c["id"] for c in listing.get("data", [])] if status == 200 else listing
        if ids != [cid]:
            problems.append(f"list contacts user_id={user}: expected [{cid}], got HTTP {status} {ids}")
    return problems


def main():
    problems = []
    deadline = time.monotonic() + 15
    while True:
        problems = check_all()
        if not problems or time.monotonic() > deadline:
            break
        time.sleep(0.25)

    if sdk_errors:
        problems += [f"the SDK called on_error: {err} for messages {ids}" for err, ids in sdk_errors]
    if not http_log:
        problems.append("the SDK made no HTTP request")
    for method, url, status, size, text in http_log:
        if method != "POST" or not url.endswith("/v1/batch") or status != 200:
            problems.append(f"SDK request {method} {url} got HTTP {status}: {text}")
    sent = sum(size for *_, size, _ in http_log)
    if sent != len(expected):
        problems.append(f"the SDK's batches carried {sent} messages, expected {len(expected)}")
    if max((size for *_, size, _ in http_log), default=0) < 2:
        problems.append("no batch carried more than one message")

    print(f"SDK requests: {[(s, n) for _, _, s, n, _ in http_log]} (HTTP status, messages)")
    if problems:
        print(f"FAIL: segment-analytics-python {analytics.VERSION} against {NUDGE_URL}:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        sys.exit(1)
    print(f"OK: segment-analytics-python {analytics.VERSION}: {len(expected)} calls in {len(http_log)} batches, all verified")


if __name__ == "__main__":
    main()
