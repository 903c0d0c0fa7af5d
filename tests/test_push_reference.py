"""A push from fieldapp is the request npm web-push, the reference sender, makes, and the
stand-in push service refuses what a real one refuses, with the status a real one answers."""
import base64
import json
import time

import pytest
import requests
from py_vapid import Vapid
from pywebpush import WebPusher

from fieldapp.delivery.push import PushSender
from tests.push_service import REFUSALS

SUBJECT = "mailto:cit-coordinator@agency.example"
PAYLOAD = json.dumps({"kind": "alert", "title": "CIT request #7", "body": "0.8 km away", "url": "/requests/7"})
# The headers requests and Node's http add to any request: framing, not the push protocol.
FRAMING = {"host", "user-agent", "accept", "accept-encoding", "connection", "content-length"}
WNS_HOST = "wns2-par02p.notify.windows.com"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_parts(authorization):
    """(scheme, k, JWT header, JWT claims) of a `vapid t=..., k=...` Authorization."""
    scheme, _, params = authorization.partition(" ")
    parts = dict(p.strip().split("=", 1) for p in params.split(","))
    header, claims, _ = parts["t"].split(".")
    decode = lambda part: json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # noqa: E731
    return scheme, parts["k"], decode(header), decode(claims)


@pytest.fixture
def vapid():
    key = Vapid()
    key.generate_keys()
    return key


@pytest.fixture
def sender(vapid):
    """fieldapp's own sender, as the worker uses it."""
    sender = PushSender(vapid, SUBJECT, ttl=300, timeout=5.0, workers=2)
    yield sender
    sender.pool.shutdown()


@pytest.fixture
def valid_push(push_service, vapid):
    """A subscription and a push to it that the stand-in takes: (endpoint, headers, body)."""
    sub = push_service.new_subscription()
    claims = {"sub": SUBJECT, "aud": push_service.origin, "exp": int(time.time()) + 12 * 3600}
    body = WebPusher(sub).encode(PAYLOAD.encode(), "aes128gcm")["body"]
    headers = {"TTL": "300", "Content-Encoding": "aes128gcm", "Content-Type": "application/octet-stream",
               "Urgency": "high", "Topic": "cit-request-7", **vapid.sign(claims)}
    return sub["endpoint"], headers, body


def test_every_header_and_claim_is_what_npm_web_push_sends(push_service, sender, vapid, web_push_reference):
    sub = push_service.new_subscription()
    outcome = sender.send(sub, PAYLOAD, "cit-request-7", urgency="high")
    assert outcome.delivered, outcome.error
    [ours] = push_service.deliveries
    theirs = web_push_reference(sub, PAYLOAD, vapid, SUBJECT, TTL=300, urgency="high", topic="cit-request-7")
    reference = {k.lower(): v for k, v in theirs["headers"].items()}

    assert set(ours.headers) - FRAMING == set(reference) - FRAMING
    for name in ("content-type", "content-encoding", "ttl", "urgency", "topic", "content-length"):
        assert ours.headers[name] == reference[name], name
    our_scheme, our_key, our_header, our_claims = jwt_parts(ours.headers["authorization"])
    their_scheme, their_key, their_header, their_claims = jwt_parts(reference["authorization"])
    assert (our_scheme, our_key, our_header) == (their_scheme, their_key, their_header)
    assert our_claims.keys() == their_claims.keys() == {"aud", "exp", "sub"}
    assert our_claims["aud"] == their_claims["aud"] == push_service.origin
    assert our_claims["sub"] == their_claims["sub"] == SUBJECT
    assert abs(our_claims["exp"] - their_claims["exp"]) < 60  # both: 12 hours from now


def test_the_stand_in_takes_npm_web_push_s_own_request(push_service, vapid, web_push_reference):
    """The strict stand-in is calibrated: the reference library's push passes it and decrypts."""
    sub = push_service.new_subscription()
    theirs = web_push_reference(sub, PAYLOAD, vapid, SUBJECT, TTL=60, urgency="normal", topic="board")
    body = base64.urlsafe_b64decode(theirs["body"] + "=" * (-len(theirs["body"]) % 4))
    response = requests.post(theirs["endpoint"], headers=theirs["headers"], data=body, timeout=5)
    assert response.status_code == 201, response.text
    assert push_service.deliveries[0].payload == json.loads(PAYLOAD)


def test_a_windows_endpoint_is_told_to_cache_for_the_ttl(push_service, sender, monkeypatch):
    # The stand-in is the HTTP proxy that reaches WNS's host here.
    monkeypatch.setenv("http_proxy", push_service.origin)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    sub = push_service.new_subscription(host=WNS_HOST)
    outcome = sender.send(sub, PAYLOAD, "cit-request-7")
    assert outcome.delivered, outcome.error
    [delivery] = push_service.deliveries
    assert delivery.headers["x-wns-cache-policy"] == "cache" and delivery.headers["ttl"] == "300"
    assert delivery.claims["aud"] == f"http://{WNS_HOST}"


def test_other_push_services_get_no_wns_header(push_service, sender):
    sender.send(push_service.new_subscription(), PAYLOAD, "cit-request-7")
    assert "x-wns-cache-policy" not in push_service.deliveries[0].headers


def test_wns_refuses_a_ttl_that_conflicts_with_its_cache_policy(push_service, vapid, monkeypatch):
    """What pywebpush sends by default (TTL 0, no policy) is what WNS drops (pywebpush issue #162)."""
    monkeypatch.setenv("http_proxy", push_service.origin)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    sub = push_service.new_subscription(host=WNS_HOST)
    zero = PushSender(vapid, SUBJECT, ttl=0, timeout=5.0, workers=1)
    assert zero.send(sub, PAYLOAD, "cit-request-7").delivered  # TTL 0 with no-cache agrees
    body = WebPusher(sub).encode(PAYLOAD.encode(), "aes128gcm")["body"]
    headers = {"TTL": "0", "Content-Encoding": "aes128gcm", "Content-Type": "application/octet-stream",
               **vapid.sign({"sub": SUBJECT, "aud": f"http://{WNS_HOST}", "exp": int(time.time()) + 3600})}
    refused = requests.post(sub["endpoint"], headers=headers, data=body, timeout=5,
                            proxies={"http": push_service.origin})
    assert refused.status_code == 400 and "X-WNS-Cache-Policy" in refused.text
    zero.pool.shutdown()


def _other_key_authorization(endpoint_origin):
    other = Vapid()
    other.generate_keys()
    return other.sign({"sub": SUBJECT, "aud": endpoint_origin, "exp": int(time.time()) + 3600})["Authorization"]


def _signed(vapid, **claims):
    vapid.conf["no-strict"] = True  # py_vapid itself refuses to sign some of the bad claims tried here
    return vapid.sign({"sub": SUBJECT, "exp": int(time.time()) + 3600, **claims})["Authorization"]


@pytest.mark.parametrize("change, rule", [
    (lambda h, v, o: h.pop("Authorization"), "no Authorization"),
    (lambda h, v, o: h.update(Authorization=h["Authorization"].replace("vapid ", "WebPush ")),
     "Authorization is not a valid VAPID JWT"),
    (lambda h, v, o: h.update(Authorization=h["Authorization"][:-12] + "AAAAAAAAAAAA"),
     "Authorization is not a valid VAPID JWT"),
    (lambda h, v, o: h.update(Authorization=_signed(v, aud="https://fcm.googleapis.com")),
     "Authorization is not a valid VAPID JWT"),
    (lambda h, v, o: h.update(Authorization=_signed(v, aud=o, exp=int(time.time()) + 25 * 3600)),
     "Authorization is not a valid VAPID JWT"),
    (lambda h, v, o: h.update(Authorization=_signed(v, aud=o, exp=int(time.time()) - 60)),
     "Authorization is not a valid VAPID JWT"),
    (lambda h, v, o: h.update(Authorization=_signed(v, aud=o, sub="cit-coordinator@agency.example")),
     "Authorization is not a valid VAPID JWT"),
    (lambda h, v, o: h.update(Authorization=_other_key_authorization(o)),
     "VAPID key is not the one the subscription was made with"),
    (lambda h, v, o: h.pop("TTL"), "no TTL"),
    (lambda h, v, o: h.update(TTL="five minutes"), "TTL is not a number of seconds"),
    (lambda h, v, o: h.pop("Content-Encoding"), "Content-Encoding is not aes128gcm"),
    (lambda h, v, o: h.update({"Content-Encoding": "aesgcm"}), "Content-Encoding is not aes128gcm"),
    (lambda h, v, o: h.pop("Content-Type"), "Content-Type is not application/octet-stream"),
    (lambda h, v, o: h.update({"Content-Type": "application/json"}), "Content-Type is not application/octet-stream"),
    (lambda h, v, o: h.update(Topic="cit-request-7-for-the-night-shift-east"),
     "Topic is not up to 32 URL-safe base64 characters"),
])
def test_the_stand_in_refuses_what_a_push_service_refuses(push_service, vapid, valid_push, change, rule):
    endpoint, headers, body = valid_push
    assert requests.post(endpoint, headers=headers, data=body, timeout=5).status_code == 201  # binds our key
    change(headers, vapid, push_service.origin)
    response = requests.post(endpoint, headers=headers, data=body, timeout=5)
    assert response.status_code == REFUSALS[rule] and response.text.startswith(rule), response.text
    assert len(push_service.deliveries) == 1


def test_the_stand_in_refuses_a_body_over_4096_bytes(push_service, valid_push):
    endpoint, headers, _ = valid_push
    response = requests.post(endpoint, headers=headers, data=b"\0" * 4097, timeout=5)
    assert response.status_code == 413


def test_the_stand_in_refuses_what_the_phone_cannot_decrypt(push_service, valid_push):
    endpoint, headers, body = valid_push
    response = requests.post(endpoint, headers=headers, data=body[:-1] + bytes([body[-1] ^ 1]), timeout=5)
    assert response.status_code == 400 and "decrypt" in response.text


def test_an_unknown_endpoint_is_not_found(push_service, valid_push):
    _, headers, body = valid_push
    assert requests.post(f"{push_service.origin}/push/gone", headers=headers, data=body, timeout=5).status_code == 404
