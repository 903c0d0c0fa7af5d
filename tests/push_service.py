"""A stand-in push service for the tests: a real HTTP server on 127.0.0.1.

It does what FCM or Mozilla's autopush would do with our POSTs, and a little
more: it verifies the VAPID JWT (RFC 8292) and decrypts the aes128gcm body
(RFC 8188/8291) with the receiver's private key, so a test sees exactly what a
phone would show. It can be told to answer 404, 410, 429 or 500, or to be slow,
for every push or for one device's endpoint.
"""
import base64
import dataclasses
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclasses.dataclass
class Receiver:
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes


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
                stall = service.endpoint_stall.get(service.origin + self.path)
                if stall:
                    time.sleep(stall)  # past the sender's timeout: never delivered
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, retry_after, problem = service._handle(self.path, dict(self.headers), body)
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
    def new_subscription(self):
        """A fresh device: a P-256 key pair and auth secret, as PushSubscription.toJSON()."""
        key = ec.generate_private_key(ec.SECP256R1())
        auth = os.urandom(16)
        endpoint = f"{self.origin}/push/{b64url_encode(os.urandom(12))}"
        self.receivers[endpoint] = Receiver(key, auth)
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
    def _handle(self, path, headers, body):
        headers = {k.lower(): v for k, v in headers.items()}
        endpoint = self.origin + path
        with self._lock:
            self.requests_seen += 1
            if endpoint in self.endpoint_status:
                return self.endpoint_status[endpoint], None, "scripted failure for this device"
            if self.script:
                status, retry_after = self.script.pop(0)
                if status >= 300:
                    return status, retry_after, "scripted failure"
        try:
            claims = self._verify_vapid(headers.get("authorization", ""))
            receiver = self.receivers[endpoint]
            if headers.get("content-encoding") != "aes128gcm":
                raise ValueError("content-encoding must be aes128gcm")
            if "ttl" not in headers:
                raise ValueError("TTL header missing")
            plain = http_ece.decrypt(body, private_key=receiver.private_key, auth_secret=receiver.auth_secret, version="aes128gcm")
        except KeyError:
            return 404, None, "no such subscription"
        except (ValueError, InvalidSignature) as e:
            with self._lock:
                self.rejections.append(str(e))
            return 400, None, str(e)
        with self._lock:
            self.deliveries.append(Delivery(endpoint, headers, claims, json.loads(plain), body, time.time()))
            self._lock.notify_all()
        return self.default_status, None, ""

    def _verify_vapid(self, authorization):
        if not authorization.startswith("vapid "):
            raise ValueError("Authorization is not 'vapid t=..., k=...'")
        parts = dict(p.strip().split("=", 1) for p in authorization[6:].split(","))
        token, key = parts["t"], parts["k"]
        header_b64, claims_b64, sig_b64 = token.split(".")
        if json.loads(b64url_decode(header_b64)).get("alg") != "ES256":
            raise ValueError("VAPID JWT must be ES256")
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(key))
        sig = b64url_decode(sig_b64)
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        public.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
        claims = json.loads(b64url_decode(claims_b64))
        if claims.get("aud") != self.origin:
            raise ValueError(f"VAPID aud {claims.get('aud')!r} is not {self.origin!r}")
        if not (time.time() < claims.get("exp", 0) <= time.time() + 24 * 3600):
            raise ValueError("VAPID exp must be in the next 24 hours")
        if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
            raise ValueError("VAPID sub must be mailto: or https:")
        return claims
