"""A real SMTP server for Nudge's email tests and benchmarks (aiosmtpd).

Usage: sink.py PORT OUT_DIR [--count-only]

Listens on 127.0.0.1:PORT. Every accepted message is written to OUT_DIR as
<n>.json: envelope sender and recipients, the headers in order, and the MIME parts
decoded (content type, charset, text). With --count-only (benchmarks) it only
appends the Message-ID to OUT_DIR/ids.txt. Recipients whose local part starts with
"bounce" are refused with 550 (a hard bounce); "later" with 451 (try again).
Prints "ready" once listening.
"""

import asyncio
import email
import email.policy
import json
import os
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


class Handler:
    def __init__(self, out, count_only):
        self.out = out
        self.count_only = count_only
        self.n = 0
        self.ids = open(os.path.join(out, "ids.txt"), "a", buffering=1) if count_only else None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0].lower()
        if local.startswith("bounce"):
            return "550 5.1.1 <%s>: no such user" % address
        if local.startswith("later"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.count_only:
            raw = envelope.content
            start = raw.find(b"\nMessage-ID:")
            if start < 0:
                start = raw.find(b"\nMessage-Id:")
            mid = raw[start + 12 : raw.find(b"\n", start + 1)].strip().decode() if start >= 0 else "?"
            self.ids.write(mid + "\n")
            return "250 Message accepted"
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        parts = []
        for part in msg.walk():
            if part.is_multipart():
                continue
            parts.append(
                {
                    "content_type": part.get_content_type(),
                    "charset": part.get_content_charset(),
                    "text": part.get_content(),
                }
            )
        self.n += 1
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "headers": [[k, str(v)] for k, v in msg.items()],
            "content_type": msg.get_content_type(),
            "parts": parts,
            "raw": envelope.content.decode("utf-8", "replace"),
        }
        tmp = os.path.join(self.out, "%d.json.tmp" % self.n)
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(self.out, "%d.json" % self.n))
        return "250 Message accepted for delivery"


def main():
    port, out = int(sys.argv[1]), sys.argv[2]
    count_only = "--count-only" in sys.argv[3:]
    os.makedirs(out, exist_ok=True)
    handler = Handler(out, count_only)
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        server_kwargs={"data_size_limit": 10 * 1024 * 1024},
    )
    controller.start()
    print("ready", flush=True)
    try:
        asyncio.new_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
