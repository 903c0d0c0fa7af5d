"""Sign-in throttling: how many failed sign-ins one network address may make (Flask-Limiter).

The sign-in form is limited per address and per account from one address;
the second factors' passkey options use `limiter` for their own limit.
"""
from flask import current_app, request
from flask_limiter import Limiter


def _address():
    """Where a sign-in comes from, as throttling sees it (the real client behind PROXY_FIX)."""
    return request.remote_addr or "unknown"


def _address_and_account():
    return f"{_address()}|{request.form.get('username', '')[:64].strip().lower()}"


def _failed(response):
    return response.status_code == 401


# Per-address limits on failed sign-ins, checked before any password is hashed.
# The limit for one account from one address sits below LOGIN_MAX_FAILURES, so
# one address can slow guessing at an account but never lock it: locking an
# officer out takes failures from several addresses (docs/SECURITY.md).
limiter = Limiter(_address)
THROTTLED = "Too many failed sign-ins from this network. Wait a few minutes, then try again, or ask your supervisor."


@limiter.request_filter
def _reads_are_never_limited():
    """Every limit here is on a POST (sign-in, passkey options): a page read skips the limiter's lookup of its route."""
    return request.method in ("GET", "HEAD", "OPTIONS")


def _sign_in_limit(setting, key_func):
    """A limit on failed sign-ins per `key_func`, read from the config `setting` when one arrives."""
    return limiter.limit(lambda: current_app.config[setting], key_func=key_func, methods=["POST"],
                         deduct_when=_failed, error_message=THROTTLED)


def failed_sign_ins_limited(view):
    """Limit the failed sign-ins at `view` from one address: to all accounts, and to any one account."""
    view = _sign_in_limit("LOGIN_LIMIT_PER_ACCOUNT_AND_ADDRESS", _address_and_account)(view)
    return _sign_in_limit("LOGIN_LIMIT_PER_ADDRESS", _address)(view)


def init_app(app):
    """Wire the limiter into the app."""
    limiter.init_app(app)
