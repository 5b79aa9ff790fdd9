"""Verifies the DKIM signature of a raw email against a public key given on the
command line instead of DNS: dkim_verify.py MESSAGE_FILE PUBLIC_KEY_BASE64.
Exits 0 when the signature verifies, 1 otherwise (printing why)."""

import sys

import dkim

raw = open(sys.argv[1], "rb").read()
record = ("v=DKIM1; k=rsa; p=" + open(sys.argv[2]).read().strip()).encode()


def dns(name, timeout=5):
    return record


ok = dkim.verify(raw, dnsfunc=dns)
print("DKIM verified" if ok else "DKIM signature does NOT verify")
sys.exit(0 if ok else 1)
