"""Links between fieldapp accounts and people at the agency's identity provider, and who may make them.

Owns `sso_links` and `sso_link_requests`. Only the issuer and the subject
(`iss` and `sub`) identify a person at an OpenID provider for good (OpenID
Connect Core 1.0, 5.7): `email` and `preferred_username` may change, may be
reused for someone else, and are not checked by every provider. So a *first*
link is made only by one of these (docs/SSO.md says why, for each setting):

1. a coordinator's mapping of the issuer and subject to an account (from the
   list of sign-ins fieldapp could not link, or typed);
2. a claim the agency names in SSO_LINK_BY as stable and verified at its
   provider, matched to the account's username or e-mail: `email` only when
   `email_verified` is true (a missing one is false), and never
   `preferred_username` or any other name a person may choose;
3. the account's owner, signed in here with a fresh proof (step_up.py), then
   signing in at the provider from their Security page.

A first link to a supervisor's or coordinator's account (SSO_APPROVAL_ROLES,
also when the provider's groups would make it one) waits for a coordinator's
approval, however it was asked for; a coordinator's own mapping is that
approval. Every request, approval, refusal, link and removal is audited, and
the account's owner is told of a link made or removed on every device
(step_up.keys_changed), which also ends their other sessions.
"""
import json
import secrets
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required

from . import accounts, notices, step_up
from ..audit import log as audit
from ..clock import now
from ..store.db import get_db, one, write_transaction
from .accounts import ROLES
from . import second_factors
from .step_up_pages import FIRST_AT_PROVIDER
from ..web.context import safe_next
from .access import role_required

bp = Blueprint("sso_links", __name__)

# Names a person chooses, or their provider lets them change: never what links an account (OIDC Core 5.7).
NEVER_LINK_BY = {"preferred_username", "nickname", "name", "given_name", "family_name", "middle_name", "profile",
                 "picture", "website", "phone_number"}
LINK_FIELDS = ("username", "email")
# What a coordinator sees of a request, besides the subject: all of it unverified.
SHOWN_CLAIMS = ("preferred_username", "name", "email", "email_verified", "upn", "oid", "employee_id", "groups")
# Session key: why the browser went to the provider this time (a step-up or the owner's link), not a sign-in.
PURPOSE = "sso_purpose"
PURPOSE_SECONDS = 10 * 60


def _issuer():
    return current_app.config["SSO_ISSUER"]


def _configured_or_404():
    if not current_app.config.get("SSO_ISSUER"):
        abort(404)


# ---- Reading links ----

def linked_account(db, subject):
    """The account linked to the provider's `subject`, or None."""
    return one(db, "SELECT users.* FROM sso_links JOIN users ON users.id = sso_links.user_id"
                   " WHERE sso_links.issuer = ? AND sso_links.subject = ?", [_issuer(), subject])


def link_of(db, user_id):
    """The account's link at the configured provider (subject, how, when), or None."""
    return one(db, "SELECT subject, how, created_at FROM sso_links WHERE issuer = ? AND user_id = ?",
               [_issuer(), user_id])


def account_named_by_claims(db, claims):
    """The account a claim the agency trusts (SSO_LINK_BY) names, and which claim, or (None, None)."""
    for claim, field in current_app.config["SSO_LINK_BY"].items():
        value = claims.get(claim)
        if not isinstance(value, str) or not value.strip():
            continue
        if claim == "email" and claims.get("email_verified") is not True:
            continue  # OIDC Core 5.1: a provider that does not say the address is verified has not verified it
        value = value.strip()
        row = (accounts.user_by_username(db, value) if field == "username"
               else one(db, "SELECT * FROM users WHERE email = ? COLLATE NOCASE", [value]))
        if row is not None:
            return row, f"the {claim} claim"
    return None, None


def needs_approval(*roles):
    """True when any of `roles` (the account's, or the one the provider's groups give) is a trusted one."""
    return bool(set(r for r in roles if r) & set(current_app.config["SSO_APPROVAL_ROLES"]))


# ---- Making and removing links ----

def link(db, user_id, subject, how):
    """Link the account to the provider's `subject`; inside a write transaction. ValueError if either is linked."""
    if linked_account(db, subject) is not None:
        raise ValueError("That agency account is already linked to a fieldapp account.")
    if link_of(db, user_id) is not None:
        raise ValueError("That fieldapp account is already linked to an agency account. Remove that link first.")
    row = accounts.user_by_id(db, user_id)
    db.execute("INSERT INTO sso_links (issuer, subject, user_id, created_at, how) VALUES (?, ?, ?, ?, ?)",
               [_issuer(), subject, user_id, now(), how])
    db.execute("DELETE FROM sso_link_requests WHERE issuer = ? AND subject = ?", [_issuer(), subject])
    audit.record(db, "sso_linked", row["username"], f"sub {subject}, by {how}")
    step_up.keys_changed(db, row, f"Your account was linked to a person at the agency's sign-in, by {how}")
    return row


def unlink(db, user_id, by):
    """Remove the account's link; inside a write transaction. True if there was one."""
    row = accounts.user_by_id(db, user_id)
    gone = db.execute("DELETE FROM sso_links WHERE issuer = ? AND user_id = ? RETURNING subject",
                      [_issuer(), user_id]).fetchone()
    if gone is None:
        return False
    audit.record(db, "sso_unlinked", row["username"], f"sub {gone[0]}, by {by}")
    step_up.keys_changed(db, row, f"The link between your account and the agency's sign-in was removed by {by}")
    return True


def ask_a_coordinator(db, claims, user_id, role, why):
    """Keep a sign-in fieldapp could not link on its own, for a coordinator to map, approve or refuse.

    Inside a write transaction. Coordinators are told the first time someone
    asks for a supervisor's or coordinator's account.
    """
    shown = json.dumps({k: claims[k] for k in SHOWN_CLAIMS if k in claims}, default=str)[:2000]
    new = one(db, "SELECT 1 AS yes FROM sso_link_requests WHERE issuer = ? AND subject = ?",
              [_issuer(), claims["sub"]]) is None
    db.execute(
        "INSERT INTO sso_link_requests (issuer, subject, user_id, role, why, claims, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (issuer, subject) DO UPDATE SET user_id = excluded.user_id,"
        " role = excluded.role, why = excluded.why, claims = excluded.claims, created_at = excluded.created_at",
        [_issuer(), claims["sub"], user_id, role, why, shown, now()])
    target = accounts.user_by_id(db, user_id) if user_id else None
    audit.record(db, "sso_link_requested", target["username"] if target else "", f"sub {claims['sub']}: {why}",
                 actor=(None, "sso"))
    if new and target is not None and needs_approval(target["role"], role):
        notices.tell_coordinators(db, f"Someone at the agency's sign-in asks to be linked to {target['username']}"
                                      f" ({target['role']}). It waits for a coordinator: see Agency sign-in links.")


def _account_named(db, username):
    row = accounts.user_by_username(db, (username or "").strip()[:64])
    if row is None:
        raise ValueError(f"There is no fieldapp account called {username!r}.")
    return row


def remove_link(db, user_id, by):
    """Remove the account's link in its own write transaction (its owner's or a coordinator's act). True if there was one."""
    with write_transaction(db):
        return unlink(db, user_id, by)


def map_subject(db, username, subject, coordinator):
    """A coordinator links the account called `username` to the provider's `subject`; the account's row.

    ValueError when there is no such account, or either is already linked.
    """
    with write_transaction(db):
        row = _account_named(db, username)
        link(db, row["id"], subject, f"a coordinator's mapping ({coordinator})")
    return row


def waiting_request(db, request_id):
    """The sign-in waiting for a coordinator with this number at the configured provider, or None."""
    return one(db, "SELECT * FROM sso_link_requests WHERE id = ? AND issuer = ?", [request_id, _issuer()])


def approve_request(db, request_id, username, coordinator):
    """A coordinator links a waiting sign-in to the account named (`username`), the one it asked for, or a new one.

    The account's row, or None when no sign-in waits with that number;
    ValueError when no account will do or either is already linked. The role
    the provider's groups gave it is the account's from now on.
    """
    with write_transaction(db):
        waiting = waiting_request(db, request_id)
        if waiting is None:
            return None
        claims = {"sub": waiting["subject"], **json.loads(waiting["claims"])}
        if (username or "").strip():
            row = _account_named(db, username)
        elif waiting["user_id"]:
            row = accounts.user_by_id(db, waiting["user_id"])
        elif current_app.config["SSO_CREATE_ACCOUNTS"]:
            row = create_account(db, claims, waiting["role"])
            if row is None:
                raise ValueError("Their agency user name cannot be a fieldapp username: name an account instead.")
        else:
            raise ValueError("Name the fieldapp account this person is.")
        audit.record(db, "sso_link_approved", row["username"], f"sub {waiting['subject']}")
        link(db, row["id"], waiting["subject"], f"a coordinator's approval ({coordinator})")
        if waiting["role"] in ROLES and waiting["role"] != row["role"]:
            accounts.set_role(db, row["id"], waiting["role"])
            audit.record(db, "role_changed", row["username"], f"{row['role']} -> {waiting['role']}"
                                                              " (from the identity provider, approved)")
    return row


def refuse_request(db, request_id):
    """A coordinator refuses a waiting sign-in: it goes, nothing is linked, and it is audited. False if none waits."""
    with write_transaction(db):
        waiting = waiting_request(db, request_id)
        if waiting is None:
            return False
        db.execute("DELETE FROM sso_link_requests WHERE id = ?", [request_id])
        target = accounts.user_by_id(db, waiting["user_id"]) if waiting["user_id"] else None
        audit.record(db, "sso_link_refused", target["username"] if target else "", f"sub {waiting['subject']}")
    return True


def requests_waiting(db):
    """Every sign-in waiting for a coordinator, newest first, with the account it would link to."""
    return [dict(r, claims=json.loads(r["claims"])) for r in db.query(
        "SELECT r.*, u.username, u.display_name, u.role AS account_role FROM sso_link_requests r"
        " LEFT JOIN users u ON u.id = r.user_id WHERE r.issuer = ? ORDER BY r.created_at DESC", [_issuer()])]


def every_link(db):
    """Every link at the configured provider, with its account."""
    return list(db.query("SELECT l.subject, l.how, l.created_at, u.id AS user_id, u.username, u.display_name, u.role"
                         " FROM sso_links l JOIN users u ON u.id = l.user_id WHERE l.issuer = ? ORDER BY u.username",
                         [_issuer()]))


def create_account(db, claims, role):
    """A new account for the provider's person (SSO_CREATE_ACCOUNTS), or None if their name will not do."""
    try:
        username = accounts.check_username(claims.get(current_app.config["SSO_USERNAME_CLAIM"]))
    except ValueError:
        return None
    if accounts.user_by_username(db, username):
        return None
    # No password anyone knows: this account signs in through the provider.
    user_id = accounts.create_user(db, username, None, role or "officer", claims.get("name") or username,
                                   password_hash=accounts.hash_password(secrets.token_urlsafe(32)))
    if claims.get("email") and claims.get("email_verified") is True:
        accounts.set_email(db, user_id, claims["email"])
    audit.record(db, "user_created", username, f"role {role or 'officer'} (from the identity provider)",
                 actor=(None, "sso"))
    return accounts.user_by_id(db, user_id)


# ---- After the provider: a step-up, or the owner linking their account ----

def start_purpose(kind, next_url=None):
    """Remember that this trip to the provider is for `kind` ("step_up" or "link"), not a sign-in."""
    session[PURPOSE] = {"kind": kind, "user_id": current_user.id, "at": now(), "next": safe_next(next_url)}


def finish_purpose(db, claims, purpose, mfa):
    """The provider sent back someone signed in here who went there to confirm it is them, or to link their account."""
    if not (isinstance(purpose, dict) and current_user.is_authenticated and purpose.get("user_id") == current_user.id
            and now() - purpose.get("at", 0) <= PURPOSE_SECONDS):
        abort(400, description="That agency sign-in was not started here, or took too long. Start again.")
    if not _just_signed_in_at_provider(claims):
        audit.record(db, "step_up_failed", current_user.username, f"sub {claims['sub']}: the provider did not ask again")
        abort(400, description="The agency sign-in did not ask who you are again. Start again.")
    if purpose["kind"] == "step_up":
        return _step_up(db, claims, purpose, mfa)
    return _owner_links(db, claims)


def _just_signed_in_at_provider(claims):
    """True when the ID token says the person signed in at the provider just before it was issued (prompt=login)."""
    auth_time, issued = claims.get("auth_time"), claims.get("iat")
    return (isinstance(auth_time, (int, float)) and isinstance(issued, (int, float))
            and 0 <= issued - auth_time <= current_app.config["STEP_UP_MINUTES"] * 60)


def _step_up(db, claims, purpose, mfa):
    linked = linked_account(db, claims["sub"])
    if linked is None or linked["id"] != current_user.id:
        audit.record(db, "step_up_failed", current_user.username, f"sub {claims['sub']} is not linked to this account")
        abort(403, description="That agency account is not the one linked to yours. Nothing was changed.")
    mine = second_factors.factors_of(db, current_user.id)
    back = purpose.get("next") or url_for("factors.security_page")
    if mfa or not (mine["totp"] or mine["passkeys"]):
        step_up.mark_proved()
        audit.record(db, "step_up", current_user.username, "with the identity provider" + (", mfa" if mfa else ""))
        return redirect(back)
    session[FIRST_AT_PROVIDER] = now()
    return redirect(url_for("step_up.confirm", next=back))


def _owner_links(db, claims):
    back = redirect(url_for("factors.security_page"))
    with write_transaction(db):
        linked = linked_account(db, claims["sub"])
        if linked is not None:
            flash("That agency account is already linked" + (" to yours." if linked["id"] == current_user.id
                                                              else " to another fieldapp account. Ask a coordinator."))
            return back
        if link_of(db, current_user.id) is not None:
            flash("Your account is linked to another agency account already. Remove that link first.")
            return back
        if needs_approval(current_user.role):
            ask_a_coordinator(db, claims, current_user.id, None, f"the owner of a {current_user.role}'s account")
            flash("A supervisor's or coordinator's link waits for a coordinator's approval. You can ask one now.")
            return back
        link(db, current_user.id, claims["sub"], "its owner, from their Security page")
    flash("Your account is linked to your agency account: you can sign in with it.")
    return back


# ---- The owner's Security page ----

@bp.app_context_processor
def _link_on_security_page():
    """`sso_link_of(user_id)` for the Security page: the link and any request waiting, when SSO is on."""
    def sso_link_of(user_id):
        if not current_app.config.get("SSO_ISSUER"):
            return None
        db = get_db()
        waiting = one(db, "SELECT created_at FROM sso_link_requests WHERE issuer = ? AND user_id = ?",
                      [_issuer(), user_id])
        return {"link": link_of(db, user_id), "waiting": waiting}

    return {"sso_link_of": sso_link_of}


@bp.route("/account/security/sso/link")
@login_required
@step_up.required()
def start_link():
    """Link your account to your agency account: sign in there now (it asks who you are again)."""
    _configured_or_404()
    start_purpose("link")
    return redirect(url_for("sso.start", **{"for": "link"}))


@bp.route("/account/security/sso/remove", methods=["POST"])
@login_required
@step_up.required()
def remove_own_link():
    """Remove the link between your account and your agency account."""
    _configured_or_404()
    removed = remove_link(get_db(), current_user.id, "its owner")
    flash("The link to your agency account is removed." if removed else "Your account was not linked.")
    return redirect(url_for("factors.security_page"), 303)


# ---- Coordinators ----

@bp.route("/sso/links")
@role_required("coordinator")
def index():
    """Agency sign-in links: who waits for a coordinator, and every link and how it was made."""
    _configured_or_404()
    return _page()


def _page(error=None, status=200):
    db = get_db()
    return render_template("sso/links.html", waiting=requests_waiting(db), links=every_link(db), error=error,
                           issuer=_issuer(), approval_roles=current_app.config["SSO_APPROVAL_ROLES"]), status


@bp.route("/sso/links", methods=["POST"])
@role_required("coordinator")
@step_up.required(back="sso_links.index")
def map_person():
    """Link an account to a person at the provider by their subject (`sub`), as the provider's console shows it."""
    _configured_or_404()
    subject = " ".join((request.form.get("subject") or "").split())
    if not subject or len(subject) > 255:
        return _page("Give the person's subject (sub) at the provider: 1 to 255 characters.", 400)
    try:
        row = map_subject(get_db(), request.form.get("username"), subject, current_user.username)
    except ValueError as e:
        return _page(str(e), 409 if "already linked" in str(e) else 400)
    flash(f"{row['display_name']} is linked to the subject {subject}.")
    return redirect(url_for("sso_links.index"), 303)


def _no_such_request():
    abort(404, description="No sign-in waits with that number; another coordinator may have answered it.")


@bp.route("/sso/links/requests/<int:request_id>/approve", methods=["POST"])
@role_required("coordinator")
@step_up.required(back="sso_links.index")
def approve(request_id):
    """Link a waiting sign-in to the account it asked for, or to the account named here."""
    _configured_or_404()
    try:
        row = approve_request(get_db(), request_id, request.form.get("username"), current_user.username)
    except ValueError as e:
        return _page(str(e), 409 if "already linked" in str(e) else 400)
    if row is None:
        _no_such_request()
    flash(f"{row['display_name']} can now sign in with the agency account.")
    return redirect(url_for("sso_links.index"), 303)


@bp.route("/sso/links/requests/<int:request_id>/refuse", methods=["POST"])
@role_required("coordinator")
def refuse(request_id):
    """Refuse a waiting sign-in: nothing is linked; the person stays refused until a coordinator maps them."""
    _configured_or_404()
    if not refuse_request(get_db(), request_id):
        _no_such_request()
    flash("Refused: nothing was linked.")
    return redirect(url_for("sso_links.index"), 303)


@bp.route("/sso/links/<int:user_id>/remove", methods=["POST"])
@role_required("coordinator")
@step_up.required(back="sso_links.index")
def remove(user_id):
    """Remove an account's link: its next agency sign-in is refused until it is linked again."""
    _configured_or_404()
    if not remove_link(get_db(), user_id, f"a coordinator ({current_user.username})"):
        abort(404, description="That account has no link to remove.")
    flash("The link is removed.")
    return redirect(url_for("sso_links.index"), 303)


def init_app(app):
    """The link rules' settings, refused at start when they would link on what the provider does not vouch for."""
    link_by = app.config["SSO_LINK_BY"]
    if not isinstance(link_by, dict):
        raise ValueError('SSO_LINK_BY maps a claim to "username" or "email", e.g. {"email": "email"}.')
    for claim, field in link_by.items():
        if claim in NEVER_LINK_BY:
            raise ValueError(f"SSO_LINK_BY cannot name {claim!r}: a person or their provider can change it, so it"
                             " never links an account (OpenID Connect Core 5.7). See docs/SSO.md.")
        if field not in LINK_FIELDS:
            raise ValueError(f'SSO_LINK_BY matches {claim!r} to "username" or "email", not {field!r}.')
    if link_by and not issuer_is_pinned(app.config.get("SSO_ISSUER", "")):
        raise ValueError("SSO_LINK_BY needs SSO_ISSUER to be one tenant's issuer, not a multi-tenant endpoint"
                         " (common, organizations): otherwise any tenant could assert the claim. See docs/SSO.md.")
    bad = set(app.config["SSO_APPROVAL_ROLES"]) - set(ROLES)
    if bad:
        raise ValueError(f"SSO_APPROVAL_ROLES names roles that do not exist: {sorted(bad)}; roles are {ROLES}.")


def issuer_is_pinned(issuer):
    """False for a provider endpoint that speaks for many tenants, whose `iss` is not one organisation's."""
    segments = [p.lower() for p in urlsplit(issuer).path.split("/")]
    return bool(issuer) and not any(p in ("common", "organizations", "consumers") or "{" in p for p in segments)
