"""The one way every sign-in ends, whatever the factors: a password, a second factor, a passkey or single sign-on."""
from flask import redirect, session, url_for
from flask_login import current_user

from ..audit import log as audit
from ..store.db import get_db
from ..web.context import safe_next
from . import notices, step_up
from .accounts import clear_failed_sign_ins
from .sessions import User, end_session, start_session


def finish_sign_in(user, method, next_url=None, mfa=False):
    """Sign `user` (a `users` row or a User) in on this browser, by `method`, and return where to go next.

    Every way in ends here once its factors are checked: a password alone,
    a password and a second factor, a passkey, single sign-on. `method` is
    written to the audit log ("password", "password+totp", "passkey", "sso", ...).
    `mfa` says the identity provider's own MFA was counted (sso.py).
    Whoever was signed in on this browser before is signed out first, so on
    a shared car computer one officer never carries on in another's session.
    """
    row = user.row if isinstance(user, User) else user
    db = get_db()
    next_url = safe_next(next_url)
    made_here = notices.made_here()  # a factor just enrolled on this browser: no need to warn of it
    if current_user.is_authenticated or session.get("sid"):
        end_session(db)
    clear_failed_sign_ins(db, row["id"])
    start_session(db, row)
    session["sign_in_method"] = method.split("+")[0]
    # Every factor the account has was just given: a fresh proof for changing them (step_up.py).
    step_up.mark_proved()
    notices.show_at_sign_in(db, row, skip=made_here)
    audit.record(db, "login", row["username"], f"via {method}{', mfa' if mfa else ''}",
                 actor=(row["id"], row["username"]))
    if row["must_change_password"]:
        return redirect(url_for("auth.change_password"))
    return redirect(next_url or url_for("home.index"))
