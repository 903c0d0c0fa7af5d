"""A stand-in push service for the tests: a real HTTP server on 127.0.0.1.

It does what FCM or Mozilla's autopush would do with our POSTs, and a little
more: it verifies the VAPID JWT (RFC 8292) and decrypts the aes128gcm body
(RFC 8188/8291) with the receiver's private key, so a test sees exactly what a
phone would show. It can be told to answer 404, 410, 429 or 500, or to be slow,
for every push or for one device's endpoint.

It is strict: a push a real service would refuse is refused here, with the
status that service gives (`REFUSALS` lists each rule and its source), so a
sender that passes here is not merely passing a lenient test double. A push
the service takes but the phone cannot decrypt is refused too (400): a real
service would take it and the phone drop it silently, and a test must see it.

Used as an HTTP proxy (`http_proxy` pointed at it), it also takes pushes for
other hosts' endpoints, such as a WNS one, and checks what that service
checks.
"""
import base64
import dataclasses
import json
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# What the stand-in refuses, and the status it answers: each is what a real push
# service answers (autopush documents its codes: mozilla-services.github.io/autopush-rs/errors.html).
REFUSALS = {
    "no Authorization": 401,  # RFC 8292 §4.2; autopush 401 errno 109
    "Authorization is not a valid VAPID JWT": 401,  # bad scheme, signature, aud, exp or sub; autopush 401
    "VAPID key is not the one the subscription was made with": 403,  # RFC 8292 §4.2
    "no TTL": 400,  # RFC 8030 §5.2: MUST 400; autopush errno 111
    "TTL is not a number of seconds": 400,  # autopush errno 112
    "Content-Encoding is not aes128gcm": 400,  # RFC 8291 §4; autopush errno 110/111
    "Content-Type is not application/octet-stream": 400,  # npm web-push always sends it; WNS documents 400 for a bad one
    "Topic is not up to 32 URL-safe base64 characters": 400,  # RFC 8030 §5.4; autopush errno 113
    "body over 4096 bytes": 413,  # RFC 8030 §7.2; autopush 413 errno 104
    "TTL conflicts with X-WNS-Cache-Policy": 400,  # WNS only: its answer in pywebpush issue #162
    "the phone could not decrypt it": 400,  # stricter than a service, which takes it (see the docstring)
}
TOPIC_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class Refused(Exception):
    """A push the service will not take: one of REFUSALS, with a detail."""

    def __init__(self, rule, detail=""):
        super().__init__(f"{rule}: {detail}" if detail else rule)
        self.rule = rule
        self.status = REFUSALS[rule]


@dataclasses.dataclass
class Receiver:
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes
    # The applicationServerKey the browser subscribed with (RFC 8292 §4.1): the
    # stand-in learns it from the first authenticated push.
    vapid_key: str | None = None
    # A Windows endpoint: the stand-in also checks what WNS checks.
    wns: bool = False


@dataclasses.dataclass
class Delivery:
    """One push the service accepted and decrypted."""

    endpoint: str
    headers: dict
    claims: dict
    payload: dict
    raw: bytes
    received_at: float


class StandInPushService:
    def __init__(self):
        self.receivers = {}
        self.deliveries = []
        self.rejections = []
        self.requests_seen = 0
        self.script = []  # queued (status, retry_after) answers, used before the default
        self.default_status = 201
        self.delay_s = 0.0
        self.endpoint_status = {}  # endpoint -> the status it always answers
        self.endpoint_stall = {}  # endpoint -> seconds it holds the connection before reading the push
        self._lock = threading.Condition()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                # An absolute target is a request sent through the stand-in as a proxy.
                endpoint = self.path if self.path.startswith("http") else service.origin + self.path
                stall = service.endpoint_stall.get(endpoint)
                if stall:
                    time.sleep(stall)  # past the sender's timeout: never delivered
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, retry_after, problem = service._handle(endpoint, dict(self.headers), body)
                if service.delay_s:
                    time.sleep(service.delay_s)
                self.send_response(status)
                if retry_after is not None:
                    self.send_header("Retry-After", str(retry_after))
                self.send_header("Content-Length", str(len(problem)))
                self.end_headers()
                self.wfile.write(problem.encode())

        class Server(ThreadingHTTPServer):
            # The default backlog of 5 stalls a burst of concurrent pushes for a second.
            request_queue_size = 128

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.server.server_port}"
        # shutdown() waits out one poll of serve_forever: the default 0.5 s cost every test half a second.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    # --- receivers -------------------------------------------------------
    def new_subscription(self, host=None):
        """A fresh device: a P-256 key pair and auth secret, as PushSubscription.toJSON().

        `host`: an endpoint on another push service's host (reached with the
        stand-in as the HTTP proxy); a `*.notify.windows.com` one is checked as
        WNS checks.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        auth = os.urandom(16)
        token = b64url_encode(os.urandom(12))
        endpoint = f"http://{host}/w/?token={token}" if host else f"{self.origin}/push/{token}"
        wns = bool(host) and (host == "notify.windows.com" or host.endswith(".notify.windows.com"))
        self.receivers[endpoint] = Receiver(key, auth, wns=wns)
        public = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": endpoint, "expirationTime": None, "keys": {"p256dh": b64url_encode(public), "auth": b64url_encode(auth)}}

    def register_browser_key(self, endpoint, jwk, auth_b64):
        """A key pair made by WebCrypto in the browser, exported as a JWK."""
        d = int.from_bytes(b64url_decode(jwk["d"]), "big")
        self.receivers[endpoint] = Receiver(ec.derive_private_key(d, ec.SECP256R1()), b64url_decode(auth_b64))

    # --- behaviour -------------------------------------------------------
    def answer(self, *statuses, retry_after=None):
        """Answer the next pushes with these statuses, in order, then the default again."""
        with self._lock:
            self.script.extend((s, retry_after) for s in statuses)

    def answer_for(self, endpoint, status):
        """Answer every push to this one device with `status` (410: the subscription has ended)."""
        self.endpoint_status[endpoint] = status

    def stall(self, endpoint, seconds):
        """Hold every push to this one device for `seconds` before answering."""
        self.endpoint_stall[endpoint] = seconds

    def delivered_to(self, endpoint):
        """How many pushes this device received and decrypted."""
        with self._lock:
            return sum(1 for d in self.deliveries if d.endpoint == endpoint)

    def wait_for(self, count, timeout=10.0):
        """Block until `count` pushes were delivered; return them."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.deliveries) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} pushes, got {len(self.deliveries)}; rejections: {self.rejections}")
                self._lock.wait(remaining)
            return list(self.deliveries)

    # --- the protocol ----------------------------------------------------
    def _handle(self, endpoint, headers, body):
        headers = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            self.requests_seen += 1
            if endpoint in self.endpoint_status:
                return self.endpoint_status[endpoint], None, "scripted failure for this device"
            if self.script:
                status, retry_after = self.script.pop(0)
                if status >= 300:
                    return status, retry_after, "scripted failure"
        receiver = self.receivers.get(endpoint)
        if receiver is None:
            return 404, None, "no such subscription"
        try:
            claims, payload = self._check(endpoint, receiver, headers, body)
        except Refused as refusal:
            with self._lock:
                self.rejections.append(str(refusal))
            return refusal.status, None, str(refusal)
        with self._lock:
            self.deliveries.append(Delivery(endpoint, headers, claims, payload, body, time.time()))
            self._lock.notify_all()
        return self.default_status, None, ""

    def _check(self, endpoint, receiver, headers, body):
        """(claims, decrypted payload) of a push that passed every check; else Refused."""
        claims = self._verify_vapid(headers.get("authorization"), endpoint, receiver)
        ttl = headers.get("ttl")
        if ttl is None:
            raise Refused("no TTL")
        if not ttl.isdigit():
            raise Refused("TTL is not a number of seconds", ttl)
        if headers.get("content-encoding") != "aes128gcm":
            raise Refused("Content-Encoding is not aes128gcm", headers.get("content-encoding", "none"))
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/octet-stream":
            raise Refused("Content-Type is not application/octet-stream", content_type or "none")
        if "topic" in headers and not TOPIC_RE.match(headers["topic"]):
            raise Refused("Topic is not up to 32 URL-safe base64 characters", headers["topic"])
        if len(body) > 4096:
            raise Refused("body over 4096 bytes", str(len(body)))
        if receiver.wns:
            # WNS caches by default; TTL 0 means "do not cache" and must say so (pywebpush issue #162).
            policy = headers.get("x-wns-cache-policy", "cache").lower()
            if (int(ttl) == 0) != (policy == "no-cache"):
                raise Refused("TTL conflicts with X-WNS-Cache-Policy", f"TTL {ttl}, policy {policy}")
        try:
            plain = http_ece.decrypt(body, private_key=receiver.private_key, auth_secret=receiver.auth_secret,
                                     version="aes128gcm")
        except (ValueError, http_ece.ECEException) as e:
            raise Refused("the phone could not decrypt it", str(e)) from None
        return claims, json.loads(plain)

    def _verify_vapid(self, authorization, endpoint, receiver):
        """The JWT's claims, checked as RFC 8292 says a push service checks them."""
        if not authorization:
            raise Refused("no Authorization")
        invalid = "Authorization is not a valid VAPID JWT"
        scheme, _, params = authorization.partition(" ")
        if scheme.lower() != "vapid":
            raise Refused(invalid, f"scheme {scheme!r}, not 'vapid t=..., k=...'")
        try:
            parts = dict(p.strip().split("=", 1) for p in params.split(","))
            token, key = parts["t"], parts["k"]
            header_b64, claims_b64, sig_b64 = token.split(".")
            header = json.loads(b64url_decode(header_b64))
            claims = json.loads(b64url_decode(claims_b64))
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(key))
            sig = b64url_decode(sig_b64)
        except (KeyError, ValueError) as e:
            raise Refused(invalid, f"unreadable ({e})") from None
        if header.get("alg") != "ES256" or len(sig) != 64:
            raise Refused(invalid, "the JWT must be ES256")
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        try:
            public.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise Refused(invalid, "the signature does not verify against k=") from None
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(endpoint))
        if claims.get("aud") != origin:
            raise Refused(invalid, f"aud {claims.get('aud')!r} is not {origin!r}")
        exp = claims.get("exp")
        if not isinstance(exp, int) or not time.time() < exp <= time.time() + 24 * 3600:
            raise Refused(invalid, "exp must be within the next 24 hours")
        if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
            raise Refused(invalid, "sub must be a mailto: or https: URL")
        with self._lock:
            if receiver.vapid_key is None:
                receiver.vapid_key = key
        if key != receiver.vapid_key:
            raise Refused("VAPID key is not the one the subscription was made with")
        return claims
