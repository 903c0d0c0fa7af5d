"""The keys to an account, and the fresh proof a change to them needs (step-up).

Adding or removing a passkey, setting up or removing an authenticator app,
making new recovery codes, changing the single sign-on link and changing the
password each need a proof given on this browser in the last STEP_UP_MINUTES:
the password and a current second factor, or a passkey alone (it is both), or
the identity provider again for someone who signs in through it. A sign-in
is such a proof (every factor the account has was just given); so is the
Confirm page (step_up_pages.py). A session left open, or a copied cookie,
is not.

After any change to the keys (`keys_changed`), the owner is told on every
device (notices.py) and in the audit log, and every other session of the
account ends.
"""
import functools

from flask import abort, current_app, flash, jsonify, redirect, request, session, url_for
from flask_login import current_user

from ..audit import log as audit
from ..clock import now
from ..web.formatting import when
from . import notices
from .sessions import end_other_sessions

PROVED_AT = "step_up_at"
MESSAGE = "Confirm it is you first: a change to how you sign in needs your password and your second factor again."


def mark_proved():
    """Everything this account signs in with was just given on this browser."""
    session[PROVED_AT] = now()


def proved(db, username, how):
    """The Confirm page took a fresh proof (`how`, e.g. "passkey"): mark this browser and audit it."""
    mark_proved()
    audit.record(db, "step_up", username, f"with {how}")


def record_failure(db, username, detail):
    """Audit a proof the Confirm page refused (a wrong password or code), and why."""
    audit.record(db, "step_up_failed", username, detail)


def is_fresh_since(at):
    """True when `at` (a time) is no older than STEP_UP_MINUTES."""
    return isinstance(at, (int, float)) and 0 <= now() - at <= current_app.config["STEP_UP_MINUTES"] * 60


def is_fresh():
    """True while this browser's last proof is younger than STEP_UP_MINUTES."""
    return is_fresh_since(session.get(PROVED_AT))


def confirm_url(back):
    """The Confirm page, coming back to `back` (a path on this site) afterwards."""
    return url_for("step_up.confirm", next=back)


def required(back=None):
    """Let a view run only after a fresh proof; otherwise send the person to prove it again, never a 500.

    `back` is the endpoint of the page to return to after confirming (a form's
    own page, since a POST cannot be replayed); a GET returns to itself. The
    passkey script is answered 401 in JSON with the page to go to. Someone
    not signed in is left to the view (mid-sign-in enrolment, or a 401).
    """
    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated or is_fresh():
                return view(*args, **kwargs)
            target = request.full_path.rstrip("?") if request.method == "GET" else url_for(back or "factors.security_page")
            if request.is_json or request.accept_mimetypes.best == "application/json":
                abort(_json_refusal(confirm_url(target)))
            flash(MESSAGE)
            return redirect(confirm_url(target), 303 if request.method == "POST" else 302)

        return wrapped

    return decorator


def _json_refusal(location):
    response = jsonify(error=MESSAGE, status=401, redirect=location)
    response.status_code = 401
    return response


def keys_changed(db, row, what):
    """After a change to the account's keys: tell its owner on every device, and end every other session.

    Call inside the change's write transaction. `what` says what happened,
    e.g. 'A security key "Blue key" was added'. The browser that made the
    change keeps its session, and already knows.
    """
    notices.tell(db, row["id"], f"{what} on {when(now())}, from the address {request.remote_addr or 'unknown'}."
                                " Not you? Change your password at once (its page offers to remove what was added),"
                                " and tell a coordinator.",
                 # The person on this browser made it: the owner signed in, or mid-sign-in (enrolling).
                 seen_here=not current_user.is_authenticated or current_user.id == row["id"])
    end_other_sessions(db, row["id"])
