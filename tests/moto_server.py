"""moto server for cordon's tests and demo: `python moto_server.py PORT`.

Prints `ready` once listening and stops when its stdin closes, so it never outlives the process
that started it. Requests are served one at a time: moto's in-memory backends are not thread-safe
(two concurrent conditional writes to DynamoDB can both succeed), while AWS applies each request
to an item atomically. Serialising requests restores that guarantee without hiding any race in
the code under test: its calls still interleave request by request.
"""

import io
import sys
import threading

from werkzeug.serving import make_server

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


# moto 5.2.5 does not implement these IAM calls (it answers HTTP 500). They are answered as IAM
# answers for a user who holds no service-specific credentials, so every containment of a user
# runs against moto. Tests that need such a credential script IAM's answers in the fault proxy.
IAM_XMLNS = "https://iam.amazonaws.com/doc/2010-05-08/"
UNIMPLEMENTED_IAM = {
    "ListServiceSpecificCredentials": (
        "200 OK",
        f'<ListServiceSpecificCredentialsResponse xmlns="{IAM_XMLNS}"><ListServiceSpecificCredentialsResult>'
        "<ServiceSpecificCredentials/><IsTruncated>false</IsTruncated></ListServiceSpecificCredentialsResult>"
        "<ResponseMetadata><RequestId>moto-shim</RequestId></ResponseMetadata></ListServiceSpecificCredentialsResponse>",
    ),
    "UpdateServiceSpecificCredential": (
        "404 Not Found",
        f'<ErrorResponse xmlns="{IAM_XMLNS}"><Error><Type>Sender</Type><Code>NoSuchEntity</Code>'
        "<Message>The Service Specific Credential cannot be found.</Message></Error>"
        "<RequestId>moto-shim</RequestId></ErrorResponse>",
    ),
}


def unimplemented_iam_answer(environ):
    """IAM's answer to a call moto lacks, or None. Leaves the request readable for moto."""
    if environ.get("REQUEST_METHOD") != "POST" or "/iam/" not in environ.get("HTTP_AUTHORIZATION", ""):
        return None
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    for action, (status, answer) in UNIMPLEMENTED_IAM.items():
        if body.startswith(f"Action={action}&".encode()):
            return status, answer.encode()
    return None


def main() -> None:
    port = int(sys.argv[1])
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialised(environ, start_response):
        missing = unimplemented_iam_answer(environ)
        if missing is not None:
            status, body = missing
            start_response(status, [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
            return [body]
        with lock:
            return list(app(environ, start_response))

    server = make_server("127.0.0.1", port, serialised, threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
