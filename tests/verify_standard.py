"""Verifies one Standard Webhooks delivery the way a receiver would, with a stock
library (the `standardwebhooks` package, or `svix`, which accepts `webhook-*` headers
too): never with Hookline's own signing code.

Reads {"library", "secret", "headers", "body_b64"} as JSON on stdin; prints "ok" and
exits 0 if the library accepts the delivery, prints why and exits 1 if it refuses it.
"""

import base64
import json
import sys

request = json.load(sys.stdin)
body = base64.b64decode(request["body_b64"])
headers = request["headers"]
try:
    if request["library"] == "standardwebhooks":
        from standardwebhooks.webhooks import Webhook

        Webhook(request["secret"]).verify(body, headers)
    elif request["library"] == "svix":
        from svix.webhooks import Webhook

        Webhook(request["secret"]).verify(body, headers)
    else:
        raise SystemExit(f"unknown library {request['library']}")
except Exception as e:  # the libraries raise their own verification errors
    print(f"refused: {type(e).__name__}: {e}")
    sys.exit(1)
print("ok")
