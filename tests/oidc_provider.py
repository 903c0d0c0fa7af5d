"""A real OpenID provider on loopback for the test session, and a person's browser at it.

tests/oidc/provider.mjs runs panva's certified oidc-provider (Node); only its
login screen is replaced so a test can say who signs in, with which claims
and which authentication methods (`amr`). The token endpoint, signed ID
tokens, PKCE and RP-initiated logout are the provider's own.
"""
import json
import socket
import subprocess
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests

HERE = Path(__file__).parent / "oidc"
CLIENT_SECRET = "test-only-client-secret"
# The Flask test client's own address: the provider sends browsers back here.
APP_ORIGIN = "http://localhost"
REDIRECT_URI = f"{APP_ORIGIN}/sso/callback"
POST_LOGOUT_REDIRECT_URI = f"{APP_ORIGIN}/login?signed_out=1"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoopbackOpenIDProvider:
    """oidc-provider in a child process on a free loopback port."""

    def __init__(self):
        # Installed by `make install-test`, never here: parallel test workers would race each other.
        if not (HERE / "node_modules" / "oidc-provider").exists():
            raise RuntimeError(f"the test OpenID provider is not installed in {HERE / 'node_modules'}:"
                               " run `make install-test` first (it installs tests/oidc)")
        port = _free_port()
        self.issuer = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            ["node", str(HERE / "provider.mjs"), str(port), CLIENT_SECRET, REDIRECT_URI, POST_LOGOUT_REDIRECT_URI],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        line = self.process.stdout.readline()
        if not line.startswith("listening"):
            self.close()
            raise RuntimeError(f"the test OpenID provider did not start: {line!r}")

    def config(self, **settings):
        """The app settings that point single sign-on at this provider."""
        return {"SSO_ISSUER": self.issuer, "SSO_CLIENT_ID": "fieldapp", "SSO_CLIENT_SECRET": CLIENT_SECRET,
                "SSO_NAME": "Metro PD account", "SSO_SCOPES": "openid profile email groups", **settings}

    def close(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process.stdout.close()


class Browser:
    """A person's browser: the app's test client plus the cookies they hold at the provider."""

    def __init__(self, client):
        self.client = client
        self.at_provider = requests.Session()

    def go_to_provider(self, app_response):
        """Follow the app's redirect into the provider until it sends the browser back; the app-bound URL."""
        assert app_response.status_code == 302, app_response.status_code
        return self._follow(app_response.headers["Location"], {})

    def _follow(self, url, login):
        while not url.startswith(APP_ORIGIN):
            response = self.at_provider.get(url, allow_redirects=False, timeout=10)
            if response.status_code == 200 and response.text.startswith("login required"):
                assert login, "the provider asked who signs in, and the test did not say"
                response = self.at_provider.get(url, params=login, allow_redirects=False, timeout=10)
            assert response.status_code in (302, 303), (response.status_code, response.text[:300])
            url = urljoin(url, response.headers["Location"])
        return url

    def start_sign_in(self, account, claims=None, amr=None, acr=None, start="/sso/login"):
        """Tap "Sign in with…" (or another link to `start`) and sign in at the provider as `account`;
        the callback URL, not yet visited."""
        login = {"account": account, "claims": json.dumps(claims or {})}
        if amr:
            login["amr"] = ",".join(amr)
        if acr:
            login["acr"] = acr
        start = self.client.get(start)
        assert start.status_code == 302, start.status_code
        return self._follow(start.headers["Location"], login)

    def sign_in(self, account, claims=None, amr=None, acr=None, start="/sso/login"):
        """The whole single sign-on; the app's answer to the callback."""
        return self.back_at_app(self.start_sign_in(account, claims, amr, acr, start))

    def back_at_app(self, url):
        """Let the app's test client visit an app URL the provider sent the browser to."""
        parts = urlsplit(url)
        return self.client.get(f"{parts.path}?{parts.query}" if parts.query else parts.path)

    def sign_out_at_provider(self, end_session_url):
        """Follow RP-initiated logout: confirm at the provider's end-session page; where it sends the browser."""
        page = self.at_provider.get(end_session_url, allow_redirects=False, timeout=10)
        assert page.status_code == 200, page.status_code
        action = page.text.split('action="', 1)[1].split('"', 1)[0]
        xsrf = page.text.split('name="xsrf" value="', 1)[1].split('"', 1)[0]
        done = self.at_provider.post(urljoin(end_session_url, action), data={"xsrf": xsrf, "logout": "yes"},
                                     allow_redirects=False, timeout=10)
        assert done.status_code in (302, 303), done.status_code
        return done.headers["Location"]
