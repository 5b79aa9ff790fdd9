#!/usr/bin/env python3
"""Sends calls to Nudge with Segment's official Python library, as an application would.

Usage: send_calls.py CALLS_JSON
  CALLS_JSON: a JSON list of {"type": "identify"|"track", "userId": ..., "traits"|"event"+"properties": ...}
Environment: NUDGE_URL (base URL), NUDGE_WRITE_KEY.
Flushes before exiting; exits 1 if the library reported an error.
"""

import json
import os
import sys

import segment.analytics as analytics

errors = []
analytics.write_key = os.environ["NUDGE_WRITE_KEY"]
analytics.host = os.environ["NUDGE_URL"]
analytics.on_error = lambda error, items: errors.append(str(error))
analytics.sync_mode = False

for call in json.loads(sys.argv[1]):
    if call["type"] == "identify":
        analytics.identify(call["userId"], call.get("traits", {}))
    elif call["type"] == "track":
        analytics.track(call["userId"], call["event"], call.get("properties", {}))
    else:
        sys.exit(f"unknown call type {call['type']!r}")
analytics.flush()
analytics.shutdown()
if errors:
    print("\n".join(errors))
    sys.exit(1)
