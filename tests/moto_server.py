"""moto server for cordon's tests and demo: `python moto_server.py PORT`.

Prints `ready` once listening and stops when its stdin closes, so it never outlives the process
that started it. Requests are served one at a time: moto's in-memory backends are not thread-safe
(two concurrent conditional writes to DynamoDB can both succeed), while AWS applies each request
to an item atomically. Serialising requests restores that guarantee without hiding any race in
the code under test: its calls still interleave request by request.
"""

import io
import json
import sys
import threading

from werkzeug.serving import make_server

from moto.events.models import EventPattern
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


# Nor does it implement events:TestEventPattern (it answers an empty 200). It is answered here,
# in the events service's JSON wire format, by moto's own event-pattern engine: the one that
# decides which rules an event reaches. The tests ask it which of template.yaml's rules an event
# matches before they hand the event to a function.
EVENT_FIELDS = ("id", "account", "source", "time", "region", "detail-type")


def test_event_pattern_answer(environ):
    """TestEventPattern's answer, or None for any other request. Leaves others readable."""
    if environ.get("HTTP_X_AMZ_TARGET") != "AWSEvents.TestEventPattern":
        return None
    length = int(environ.get("CONTENT_LENGTH") or 0)
    request = json.loads(environ["wsgi.input"].read(length) or b"{}")

    def error(code, message):
        return "400 Bad Request", json.dumps({"__type": code, "message": message}).encode()

    try:
        pattern = EventPattern.load(request.get("EventPattern"))
    except Exception as e:  # moto raises its own exception types for an invalid pattern
        return error("InvalidEventPatternException", f"Event pattern is not valid. Reason: {e}")
    try:
        event = json.loads(request.get("Event") or "")
    except ValueError:
        return error("ValidationException", "Parameter Event is not valid.")
    if not isinstance(event, dict) or any(f not in event for f in EVENT_FIELDS):
        return error("ValidationException", "Parameter Event is not valid.")
    return "200 OK", json.dumps({"Result": pattern.matches_event(event)}).encode()


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
        tested = test_event_pattern_answer(environ)
        if tested is not None:
            status, body = tested
            start_response(
                status,
                [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body)))],
            )
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
