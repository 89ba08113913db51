"""moto's server, with DynamoDB requests run one at a time.

DynamoDB applies each request atomically: a conditional write either sees and changes
an item or fails, and a cancelled transaction changes nothing. moto's threaded server
runs requests at once with no lock, so two conditional updates racing on one item can
both succeed, and a cancelled TransactWriteItems restores the whole table as it was
before the call, undoing writes made meanwhile. Tests of Hookline's guarantees (one
attempt in flight, no duplicate delivery) would then fail for moto's sake, now and
then. Serialising DynamoDB requests gives them DynamoDB's semantics back; other
services (SQS long polls above all) still run concurrently.

Usage: python moto_server.py HOST PORT
"""

import os
import signal
import sys
import threading

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

DYNAMODB = threading.Lock()


def serialise_dynamodb(app):
    def wrapped(environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            with DYNAMODB:
                # The body is produced inside the lock: moto may answer lazily.
                return list(app(environ, start_response))
        return app(environ, start_response)

    return wrapped


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    # moto builds queue URLs and the like from it, as its own launcher does.
    os.environ.setdefault("MOTO_PORT", str(port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, serialise_dynamodb(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
