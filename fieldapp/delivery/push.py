"""Sending Web Push (RFC 8030/8291/8292) through pywebpush, and the VAPID keys.

pywebpush is the maintained web-push-libs sender. Three of its habits are
handled here: it mutates the claims dict it is given (so every send builds a
fresh one), its TTL defaults to 0 and its timeout to none (both always set).
One `requests.Session` is shared so connections to a push service are reused.
"""
import base64
import concurrent.futures
import dataclasses
import re
import time
from pathlib import Path

import click
from flask.cli import AppGroup
import requests
from cryptography.hazmat.primitives import serialization
from flask import current_app
from py_vapid import Vapid
from py_vapid.utils import b64urlencode
from pywebpush import WebPushException, webpush
from urllib3.util import parse_url
from urllib3.exceptions import LocationParseError

# The push services browsers use today; endpoints anywhere else are refused,
# because the server would otherwise POST to any URL a client hands it.
DEFAULT_PUSH_HOSTS = (
    "fcm.googleapis.com",
    "android.googleapis.com",
    "updates.push.services.mozilla.com",
    "push.services.mozilla.com",
    "web.push.apple.com",
    "notify.windows.com",
)


def load_or_create_vapid(instance_path):
    """The VAPID key pair, generated into the instance folder on first use."""
    path = Path(instance_path) / "vapid_private.pem"
    if not path.exists():
        vapid = Vapid()
        vapid.generate_keys()
        path.write_bytes(vapid.private_pem())
        path.chmod(0o600)
    return Vapid.from_file(str(path))


def application_server_key(vapid):
    """The public key as the browser's `applicationServerKey` (base64url, uncompressed point)."""
    raw = vapid.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return b64urlencode(raw)


# A push service's host name: ASCII letters, digits, hyphens and dots, ending in
# a name (so never an IP address).
PUSH_HOST_RE = re.compile(r"^([a-z0-9-]+\.)+[a-z][a-z0-9-]*$")


def is_p256_point(p256dh):
    """True when a subscription's `p256dh` (base64url) is a point on P-256, which the message is encrypted to.

    65 bytes starting 0x04 is only its shape: a point off the curve fails at
    every send, so it is refused when the browser subscribes (RFC 8291).
    """
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        raw = base64.urlsafe_b64decode(p256dh + "=" * (-len(p256dh) % 4))
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except (ValueError, TypeError):
        return False
    return True


def endpoint_allowed(endpoint, config):
    """True when `endpoint` is an https URL on a known push service (or a configured test host).

    It is read with urllib3's `parse_url`, the parser requests connects with,
    so the host checked is the host connected to. A different parser reads
    `https://127.0.0.1\\@fcm.googleapis.com/` as Google's host; urllib3
    connects to 127.0.0.1. Userinfo, backslashes, fragments, explicit ports,
    IP addresses and non-ASCII hosts are refused outright: no browser's push
    service uses them.
    """
    if not isinstance(endpoint, str) or not endpoint.isascii() or not endpoint.isprintable():
        return False
    if "\\" in endpoint or " " in endpoint:
        return False
    try:
        parts = parse_url(endpoint)
    except (LocationParseError, ValueError):
        return False
    host = (parts.host or "").lower()
    if parts.auth is not None or parts.fragment is not None or not host:
        return False
    if parts.scheme == "http" and host in config.get("PUSH_INSECURE_HOSTS", ()):
        return True  # the tests' stand-in push service, on a local port
    if parts.scheme != "https" or parts.port is not None or not PUSH_HOST_RE.match(host):
        return False
    allowed = config.get("PUSH_SERVICE_HOSTS") or DEFAULT_PUSH_HOSTS
    return any(host == h or host.endswith("." + h) for h in allowed)


def request_headers(endpoint, ttl, urgency, topic):
    """A push's headers beyond the three pywebpush writes (Content-Encoding, TTL, Authorization).

    Content-Type is what npm web-push, the reference sender, sends with every
    push (tests/test_push_reference.py compares the two). Windows' WNS reads
    the TTL against its own X-WNS-Cache-Policy, which defaults to "cache", and
    drops a push whose two disagree with 400 "Ttl value conflicts with
    X-WNS-Cache-Policy" (pywebpush issue #162), so its endpoints are told the
    policy the TTL means.
    """
    headers = {"Content-Type": "application/octet-stream", "Urgency": urgency, "Topic": topic}
    host = (parse_url(endpoint).host or "").lower()
    if host == "notify.windows.com" or host.endswith(".notify.windows.com"):
        headers["X-WNS-Cache-Policy"] = "cache" if ttl > 0 else "no-cache"
    return headers


@dataclasses.dataclass
class Outcome:
    """What one push attempt came to."""

    status: int | None
    error: str = ""
    retry_after: float | None = None
    duration_ms: float = 0.0
    # The send could not even be made (a malformed subscription, an endpoint
    # pywebpush refuses): trying again gives the same answer.
    permanent: bool = False

    @property
    def delivered(self):
        return self.status in (200, 201, 202)

    @property
    def gone(self):
        """The subscription no longer exists and must be deleted."""
        return self.status in (404, 410)

    @property
    def retryable(self):
        """The push service or the network failed: worth another try later."""
        return not self.permanent and (self.status is None or self.status == 429 or self.status >= 500)

    @property
    def device_failed(self):
        """This device's subscription is at fault, not the push service or the network."""
        return not (self.delivered or self.gone or self.retryable)


def _describe(error):
    """An error as one short line for push_attempts."""
    return f"{type(error).__name__}: {error}".splitlines()[0][:200]


def _retry_after(response):
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class PushSender:
    """Encrypts and posts push messages; sends many at once through a thread pool."""

    def __init__(self, vapid, subject, ttl=300, timeout=5.0, workers=16):
        self.vapid = vapid
        self.subject = subject
        self.ttl = ttl
        self.timeout = timeout
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=workers)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="push")

    def send(self, subscription, payload, topic, urgency="high"):
        """Send one message; never raises, always returns an Outcome."""
        started = time.perf_counter()
        try:
            response = webpush(
                subscription_info=subscription,
                data=payload,
                vapid_private_key=self.vapid,
                vapid_claims={"sub": self.subject},
                ttl=self.ttl,
                timeout=self.timeout,
                headers=request_headers(subscription["endpoint"], self.ttl, urgency, topic),
                requests_session=self.session,
            )
            outcome = Outcome(status=response.status_code)
        except WebPushException as e:
            response = e.response
            outcome = Outcome(
                status=response.status_code if response is not None else None,
                error=str(e).splitlines()[0][:200],
                retry_after=_retry_after(response),
            )
        except (requests.ConnectionError, requests.Timeout) as e:
            outcome = Outcome(status=None, error=_describe(e))
        except Exception as e:
            # Anything else (pywebpush's VapidException for an endpoint it cannot
            # read, bad keys, an invalid URL) is this one message's failure: it is
            # recorded and never stops the rest of a batch.
            outcome = Outcome(status=None, error=_describe(e), permanent=True)
        outcome.duration_ms = (time.perf_counter() - started) * 1000
        return outcome

    def send_many(self, messages):
        """Send [(subscription, payload, topic)] concurrently; outcomes in the same order.

        Each message fails alone: `send` never raises, so one message that cannot
        be sent never stops the others.
        """
        return list(self.pool.map(lambda m: self.send(*m), messages))


def get_sender():
    """The app's shared sender, created on first use."""
    ext = current_app.extensions
    if "fieldapp.push" not in ext:
        ext["fieldapp.push"] = PushSender(
            load_or_create_vapid(current_app.instance_path),
            current_app.config["VAPID_SUBJECT"],
            ttl=current_app.config["PUSH_TTL"],
            timeout=current_app.config["PUSH_TIMEOUT"],
        )
    return ext["fieldapp.push"]


@click.group("vapid", cls=AppGroup)
def vapid_cli():
    """Web Push (VAPID) keys."""


@vapid_cli.command("show")
def vapid_show():
    """Print the public key browsers subscribe with."""
    click.echo(application_server_key(load_or_create_vapid(current_app.instance_path)))


def init_app(app):
    """Push settings and the `vapid` command."""
    subject = app.config["VAPID_SUBJECT"]
    if not subject.startswith(("mailto:", "https:")):
        raise ValueError("VAPID_SUBJECT must be a mailto: or https: URL")
    app.cli.add_command(vapid_cli)
    app.jinja_env.globals["vapid_public_key"] = vapid_public_key


def vapid_public_key():
    """The applicationServerKey for templates, read once per process."""
    ext = current_app.extensions
    if "fieldapp.vapid_public" not in ext:
        ext["fieldapp.vapid_public"] = application_server_key(load_or_create_vapid(current_app.instance_path))
    return ext["fieldapp.vapid_public"]
