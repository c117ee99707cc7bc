"""MAC access authentication (fact sheet section 3)."""
from __future__ import annotations

import json
import time
from collections import deque

import pytest
import requests

from simulator.testing import SandboxServer
from paysera_helpers import (DEFAULT_ID, DEFAULT_KEY, PayseraClient, body_hash, client, ext_for,  # noqa: F401
                             first_payment, header, mac, normalized, two_tenants)

KEY, ID, NONCE = "IrdTc8uQodU7PRpLzzLTW6wqZAO6tAMU", "wkVd93h2uS", "nQnNaSNyubfPErjRO55yaaEYo9YZfKHN"
PR = "PRAFY24n-UBgSkiRCL-h_CVAAvj4MEkj"

VECTORS = [
    (1343818800, "GET", "/wallet/rest/v1/payment/10145", "wallet.paysera.com", 443, "",
     "d1OlqI77u2P1IVYIv2ppL3hnrBhyaQ+gDqYMxCH+0e0="),
    (1343818800, "POST", "/wallet/oauth/v1/", "wallet.paysera.com", 443,
     "body_hash=IftzxAtYliLQx46c2JAPidlHKqck0OXD7KmsHNnSptU%3D", "YEIWoGDeREjJNh+IplpTcCLRNASTAMgFqa540igFcaY="),
    (1343811600, "POST", "/checkout/rest/v1/payment-requests", "checkout-eu-a.paysera.com", 443,
     "body_hash=A3KDuD2IfzzJeEtoJFYIZ%2B2UIZwMmEnLNpSKpZZVMLQ%3D", "ikVkAqVe4Yp5JZ/VckAgZQTVOBaDItb1H2GWWP5INSg="),
    (1343811600, "POST", "/checkout/rest/v1/payment-requests", "checkout-eu-a.paysera.com", 443, "",
     "B3iRmOP5pZCTt5AdhJDnOj9O1F3U/oZ5z7Z6WgbG6h4="),
    (1343811600, "GET", "/rest/v1/payment/10145", "wallet.paysera.com", 443, "",
     "/qxTA8FOgT0Dd0MHh9k/sUQ3Q38ckx8+S0PBxpIuttY="),
    (1343811600, "GET", f"/checkout/rest/v1/payment-requests/{PR}", "checkout-eu-a.paysera.com", 443, "",
     "SPX2fWk4IN+OBZ+kN8IvYLocSwTPk8kznkPVPCrcKHg="),
    (1343811600, "PUT", f"/checkout/rest/v1/payment-requests/{PR}/authorize", "checkout-eu-a.paysera.com", 443,
     "body_hash=5N9QESEH4t9yr0RIZ84YsPgIhUHcc1PMgXXoHP3C7zo%3D", "r7dBkWGSBvAJykl+ZpdP9MnokF+7zYNzupcdndFP8Eo="),
    (1343811600, "PUT", "/notification/rest/v1/notifications/ZA36418283/read", "checkout-eu-a.paysera.com", 443, "",
     "NTdkm0GMj62G9ptwv6R6OFO7DLHqmtzGgerwBOaCUuY="),
    (1343811600, "GET", "/notification/rest/v1/notifications?status=new&limit=20", "localhost", 5000, "",
     "JuYMmopObuwjlrs1r6nopIlcdsEuK7i453NZLloR8v0="),
]


@pytest.mark.parametrize("ts,method,uri,host,port,ext,expected", VECTORS)
def test_signer_matches_fact_sheet_vectors(ts, method, uri, host, port, ext, expected):
    assert mac(KEY, normalized(ts, NONCE, method, uri, host, port, ext)) == expected


def test_body_hash_vectors_cover_raw_bytes():
    form = b"grant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA&redirect_uri=http%3A%2F%2Flocalhost%2Fabc"
    assert ext_for(form) == "body_hash=IftzxAtYliLQx46c2JAPidlHKqck0OXD7KmsHNnSptU%3D"
    doc = {"business_id": "LcKB4rs-pNVLgQKxZTaGzfZRAuiQPuyE", "order_id": "12345446",
           "price": {"amount": "10.00", "currency": "EUR"},
           "description": "Payment for goods on order 12345446 on the website https://shop.com.",
           "method_key": "card", "payer": {"email": "payer@email.com"}, "locale": "en",
           "accept_url": "https://shop.com/accept-url", "cancel_url": "https://shop.com/cancel-url",
           "callback_url": "https://shop.com/callback-url"}
    php_pretty = json.dumps(doc, indent=4).replace("/", "\\/").encode()
    assert body_hash(php_pretty) == "A3KDuD2IfzzJeEtoJFYIZ+2UIZwMmEnLNpSKpZZVMLQ="
    assert body_hash(json.dumps(doc).encode()) != "A3KDuD2IfzzJeEtoJFYIZ+2UIZwMmEnLNpSKpZZVMLQ="
    assert ext_for(b'{"token":"vLUGdTtnDjQs7Yv0fjYQyYfG60m"}') == \
        "body_hash=5N9QESEH4t9yr0RIZ84YsPgIhUHcc1PMgXXoHP3C7zo%3D"


def test_signed_request_is_accepted_and_nonce_may_hold_commas_spaces_and_equals(server, client):
    resp = client.request("GET", "/checkout/rest/v1/payment-requests", sign={"nonce": "a, b=c , d=e,, f x=yz"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["items"] == []
    # bare commas, extra spaces and any parameter order are tolerated as well
    url = client.root + "/checkout/rest/v1/payment-requests?status=new&limit=5"
    ts, nonce = str(int(time.time())), "n, o=p q,"
    value = mac(DEFAULT_KEY, normalized(ts, nonce, "GET", "/paysera/checkout/rest/v1/payment-requests?status=new&limit=5",
                                        "127.0.0.1", server.port))
    auth = f'MAC mac="{value}" ,nonce="{nonce}",ts = "{ts}",   id="{DEFAULT_ID}"'
    assert requests.get(url, headers={"Authorization": auth}).status_code == 200


def test_wrong_mac_is_rejected_with_paysera_401(server, client):
    other = PayseraClient(server.url, DEFAULT_ID, "not-the-key")
    resp = other.request("GET", "/checkout/rest/v1/payment-requests")
    assert resp.status_code == 401
    assert resp.json() == {"error": "unauthorized",
                           "error_description": "You have not provided any credentials or they are invalid"}


@pytest.mark.parametrize("auth", [
    None, "Bearer abc", 'MAC id="sandbox-mac-id"', 'MAC id="x", ts="1", nonce="n", mac="m"',
    'MAC id="sandbox-mac-id" ts="1"', 'MAC id=unquoted, ts="1", nonce="n", mac="m"',
])
def test_missing_or_garbled_header_is_401(server, auth):
    headers = {"Authorization": auth} if auth else {}
    resp = requests.get(server.url + "/paysera/checkout/rest/v1/payment-requests", headers=headers)
    assert resp.status_code == 401
    assert resp.json()["error"] == "unauthorized"


def test_request_signed_for_another_path_or_method_is_rejected(server, client):
    url = client.root + "/checkout/rest/v1/payment-requests"
    auth = header(DEFAULT_ID, DEFAULT_KEY, "GET", url + "?status=new")
    assert requests.get(url, headers={"Authorization": auth}).status_code == 401
    auth = header(DEFAULT_ID, DEFAULT_KEY, "GET", url)
    assert requests.get(url, headers={"Authorization": auth}).status_code == 200
    auth = header(DEFAULT_ID, DEFAULT_KEY, "DELETE", url)
    assert requests.get(url, headers={"Authorization": auth}).status_code == 401


def test_stale_and_future_timestamps_are_rejected(server, client):
    for ts in (int(time.time()) - 3600, int(time.time()) + 3600):
        resp = client.request("GET", "/checkout/rest/v1/payment-requests", sign={"ts": ts})
        assert resp.status_code == 401
    assert client.request("GET", "/checkout/rest/v1/payment-requests",
                          sign={"ts": int(time.time()) - 60}).status_code == 200


def test_replayed_nonce_is_rejected(server, client):
    url = client.root + "/checkout/rest/v1/payment-requests"
    auth = header(DEFAULT_ID, DEFAULT_KEY, "GET", url)
    assert requests.get(url, headers={"Authorization": auth}).status_code == 200
    replay = requests.get(url, headers={"Authorization": auth})
    assert replay.status_code == 401
    assert replay.json()["error"] == "unauthorized"


class Unwalkable(dict):
    def __iter__(self):
        raise AssertionError("a request walked the nonces")

    items = keys = values = __iter__


def test_a_request_drops_expired_nonces_without_walking_those_still_in_the_window(server, client):
    # at a few hundred requests a second the window holds tens of thousands of nonces: walking
    # them on every request made each one slower than the last
    paysera, now = server.sandbox.providers["paysera"], time.time()
    expired = [(now - 1, (DEFAULT_ID, "1", f"old-{n}")) for n in range(5)]
    live = [(now + 300, (DEFAULT_ID, "1", f"live-{n}")) for n in range(20_000)]
    paysera._nonces = Unwalkable({key: expires for expires, key in expired + live})
    paysera._nonce_order = deque(expired + live)
    assert client.request("GET", "/checkout/rest/v1/payment-requests").status_code == 200
    held = dict.keys(paysera._nonces)
    assert len(held) == 20_001 and not [key for key in held if key[2].startswith("old-")]


def test_freshness_uses_the_wall_clock_not_the_virtual_clock(server, client):
    server.advance("P400D")
    assert client.request("GET", "/checkout/rest/v1/payment-requests").status_code == 200


def test_tampered_body_is_rejected(server, client, receiver):
    body = first_payment(receiver.url + "/cb")
    signed = json.dumps(body).encode()
    tampered = json.dumps({**body, "price": {"amount": "0.01", "currency": "EUR"}}).encode()
    resp = client.request("POST", "/checkout/rest/v1/payment-requests", raw=signed, body_override=tampered)
    assert resp.status_code == 401
    assert resp.json()["error"] == "unauthorized"
    listing = client.request("GET", "/checkout/rest/v1/payment-requests").json()
    assert listing["items"] == []


def test_body_without_body_hash_is_rejected(server, client, receiver):
    resp = client.request("POST", "/checkout/rest/v1/payment-requests",
                          first_payment(receiver.url + "/cb"), sign={"ext": ""})
    assert resp.status_code == 401


def test_extra_ext_parameters_are_signed_too(server, client, receiver):
    body = json.dumps(first_payment(receiver.url + "/cb")).encode()
    resp = client.request("POST", "/checkout/rest/v1/payment-requests", raw=body,
                          sign={"ext": ext_for(body, {"project_id": "12 3", "location_id": "a/b"})})
    assert resp.status_code == 200, resp.text


def test_unknown_mac_id_is_rejected(server):
    resp = PayseraClient(server.url, "someone-else", DEFAULT_KEY).request("GET", "/checkout/rest/v1/payment-requests")
    assert resp.status_code == 401


def test_credentials_come_from_config_and_replace_the_default(two_tenants):
    assert PayseraClient(two_tenants.url, "shop-a", "key-a-secret").request(
        "GET", "/checkout/rest/v1/payment-requests").status_code == 200
    assert PayseraClient(two_tenants.url).request("GET", "/checkout/rest/v1/payment-requests").status_code == 401
    config = two_tenants.admin("GET", "/config").json()
    assert "key-a-secret" not in json.dumps(config)


def test_credentials_can_be_changed_at_run_time(server, client):
    resp = server.admin("PUT", "/config", json={"providers": {"paysera": {"credentials": {"new-id": "new-key"}}}})
    assert resp.status_code == 200, resp.text
    assert client.request("GET", "/checkout/rest/v1/payment-requests").status_code == 401
    assert PayseraClient(server.url, "new-id", "new-key").request(
        "GET", "/checkout/rest/v1/payment-requests").status_code == 200


def test_default_pair_is_printed_at_start(server):
    lines = server.sandbox.providers["paysera"].startup_lines("http://127.0.0.1:8080")
    text = "\n".join(lines)
    assert "http://127.0.0.1:8080/paysera/" in text
    assert DEFAULT_ID in text and DEFAULT_KEY in text


def test_hosted_page_needs_no_credentials(server, client, receiver):
    pr = client.create(**first_payment(receiver.url + "/cb")).json()
    assert requests.get(pr["authorization_url"]).status_code == 200


def test_freshness_checks_can_be_switched_off():
    with SandboxServer({"webhooks": "manual",
                        "providers": {"paysera": {"ts_window_seconds": 0, "nonce_replay_check": False}}}) as srv:
        c = PayseraClient(srv.url)
        assert c.request("GET", "/checkout/rest/v1/payment-requests", sign={"ts": 1}).status_code == 200


@pytest.mark.parametrize("section", [{"credentials": ["id", "key"]}, {"credentials": {"id": 5}},
                                     {"ts_window_seconds": -1}, {"callback_notification_id": "header"},
                                     {"unknown_key": 1}])
def test_bad_paysera_config_is_refused(section):
    from simulator.config import Config
    from simulator.core.documents import DocumentError
    with pytest.raises(DocumentError):
        Config.from_document({"providers": {"paysera": section}})


@pytest.mark.parametrize("space", ["\u00a0", "\u0085"])
def test_only_ascii_whitespace_separates_mac_header_parameters(server, client, space):
    # a header's latin-1 bytes 0xA0 / 0x85 decode to NBSP / NEL, which Python's \s and strip()
    # take as whitespace; HTTP and Paysera's parser do not
    url = client.root + "/checkout/rest/v1/payment-requests"
    for auth in (header(DEFAULT_ID, DEFAULT_KEY, "GET", url, sep="," + space),
                 "MAC" + space + header(DEFAULT_ID, DEFAULT_KEY, "GET", url)[4:],
                 header(DEFAULT_ID, DEFAULT_KEY, "GET", url) + space):
        resp = requests.get(url, headers={"Authorization": auth.encode("latin-1")})
        assert resp.status_code == 401, (auth, resp.text)
        assert resp.json()["error"] == "unauthorized"
    assert requests.get(url, headers={"Authorization": header(DEFAULT_ID, DEFAULT_KEY, "GET", url, sep=",\t")}
                        ).status_code == 200


@pytest.mark.parametrize("ts", ["1" * 5000, "9" * 16, "0" * 20 + "1"], ids=["5000-digits", "16-digits", "zero-padded"])
def test_timestamp_of_thousands_of_digits_is_401(server, client, ts):
    # int() refuses a run of more than 4300 digits with a ValueError, once a 500
    resp = client.request("GET", "/checkout/rest/v1/payment-requests", sign={"ts": ts})
    assert resp.status_code == 401, resp.text
    assert resp.json()["error"] == "unauthorized"
