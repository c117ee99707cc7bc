"""The MAC covers the request URI as the client sent it (fact sheet 3.2, line 4), escapes and all,
whatever the path decodes to; and a wrong method answers Paysera's 405 envelope."""
from __future__ import annotations

import threading
from socketserver import ThreadingMixIn
from urllib.parse import unquote
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import requests
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from simulator import create_app
from simulator.providers.paysera import Paysera
from paysera_helpers import PayseraClient, client  # noqa: F401

NOT_FOUND = {"error": "not_found", "error_description": "Resource was not found"}
BAD_LIMIT = "limit must be an integer between 1 and 200"
PR = "/checkout/rest/v1/payment-requests"
NOTES = "/notification/rest/v1/notifications"

# (path below /paysera, what requests puts on the wire): invalid UTF-8 escapes, valid ones, an
# escaped unreserved character, and the sub-delimiters a client leaves unescaped in a path
PATHS = [
    (f"{PR}/%ff%fe", f"{PR}/%FF%FE"),
    (f"{PR}/%C3%A9", f"{PR}/%C3%A9"),
    (f"{PR}/%50", f"{PR}/P"),
    (f"{PR}/a:b@c!$&'()*+,;=~", f"{PR}/a:b@c!$&'()*+,;=~"),
    (f"{PR}/%25ff", f"{PR}/%25ff"),
]
QUERIES = [f"{PR}?limit=%ff", f"{NOTES}?limit=%ff", f"{NOTES}?status=new&limit=%C3%A9"]


def assert_answers(c):
    for path, wire in PATHS:
        resp = c.request("GET", path)
        assert resp.request.path_url == "/paysera" + wire   # signed over exactly this
        assert (resp.status_code, resp.json()) == (404, NOT_FOUND), (path, resp.text)
    for path in QUERIES:
        resp = c.request("GET", path)
        assert resp.status_code == 400, (path, resp.text)
        body = resp.json()
        assert body["error"] == "invalid_parameters" and body["error_properties"] == {"limit": [BAD_LIMIT]}
        assert body["error_description"] == BAD_LIMIT


def test_signed_uri_with_undecodable_escapes_gets_paysera_answers_on_waitress(server, client):
    # waitress hands the raw request target over as REQUEST_URI
    assert_answers(client)


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class _Threading(ThreadingMixIn, WSGIServer):
    daemon_threads = True


@pytest.fixture
def wsgiref_server():
    """The sandbox behind a WSGI server that passes neither REQUEST_URI nor RAW_URI, only the
    decoded PATH_INFO (the standard library's wsgiref)."""
    app = create_app({"seed": 1, "clock": {"start": "2026-01-01T00:00:00Z"}, "webhooks": "manual"})
    sandbox = app.extensions["sandbox"]
    httpd = make_server("127.0.0.1", 0, app, server_class=_Threading, handler_class=_Quiet)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    sandbox.start_dispatcher()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        sandbox.close()


def test_signed_uri_is_rebuilt_from_the_path_bytes_where_the_server_gives_no_raw_uri(wsgiref_server):
    c = PayseraClient(wsgiref_server)
    assert c.request("GET", PR).status_code == 200
    assert_answers(c)


@pytest.mark.parametrize("path", [f"/paysera{p}" for p, _ in PATHS] + [f"/paysera{p}" for p in QUERIES])
def test_fallback_quotes_like_the_client(path):
    wire = requests.Request("GET", "http://h" + path).prepare().path_url
    environ = EnvironBuilder(path=wire).get_environ()
    assert Paysera._raw_uri(Request(environ)) == wire   # the test client passes the raw URI
    # a server without them leaves PATH_INFO, the decoded bytes as a latin-1 string (PEP 3333;
    # wsgiref's way), so the escapes come back in the canonical form (upper case, unreserved
    # characters unescaped), which is the form requests sends
    path_only, _, query = wire.partition("?")
    for key in ("REQUEST_URI", "RAW_URI"):
        environ.pop(key)
    environ.update(SCRIPT_NAME="", PATH_INFO=unquote(path_only, "latin-1"), QUERY_STRING=query)
    assert Paysera._raw_uri(Request(environ)) == wire


@pytest.mark.parametrize("method,path", [("DELETE", PR), ("PATCH", f"{PR}/x"), ("POST", f"{PR}/x/authorize"),
                                         ("GET", f"{PR}/x/cancel"), ("POST", NOTES), ("GET", f"{NOTES}/x/read")])
def test_wrong_method_is_paysera_405_envelope(server, client, method, path):
    # fact sheet 8: a wrong method on a known URL is 405 with error not_found, with the same
    # description as an unknown URL; signed or not
    resp = client.request(method, path)
    assert resp.status_code == 405 and resp.headers["Content-Type"] == "application/json"
    assert resp.json() == NOT_FOUND
    unsigned = requests.request(method, client.root + path)
    assert (unsigned.status_code, unsigned.json()) == (405, NOT_FOUND)
