"""moto server for cordon's tests and demo: `python moto_server.py PORT`.

Prints `ready` once listening and stops when its stdin closes, so it never outlives the process
that started it. Requests are served one at a time: moto's in-memory backends are not thread-safe
(two concurrent conditional writes to DynamoDB can both succeed), while AWS applies each request
to an item atomically. Serialising requests restores that guarantee without hiding any race in
the code under test: its calls still interleave request by request.
"""

import sys
import threading

from werkzeug.serving import make_server

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def main() -> None:
    port = int(sys.argv[1])
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialised(environ, start_response):
        with lock:
            return list(app(environ, start_response))

    server = make_server("127.0.0.1", port, serialised, threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
