"""Single sign-on with the agency's identity provider (OpenID Connect), and its links to local accounts.

Off unless SSO_ISSUER is set. The authorization code flow with PKCE, the
`state` and the `nonce` are Authlib's; this module decides who the person the
provider vouches for is here: the account linked to their issuer and subject,
or one the link rules allow (sso_links.py, which owns the links), its role
(from a claim, when a mapping is configured), and whether the provider's own
MFA counts as the second factor. docs/SSO.md explains the link rules and
their settings; docs/SECURITY.md maps each control to its test.
"""
from urllib.parse import urlsplit

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from joserfc.errors import JoseError
from flask import Blueprint, abort, current_app, render_template, request, session, url_for
from flask_login import current_user

from . import accounts, sso_links
from .accounts import ROLES
from ..audit import log as audit
from ..web.context import safe_next
from ..web.security import CONTENT_SECURITY_POLICY
from .second_factors import second_step
from .sign_in import finish_sign_in
from ..store.db import get_db, write_transaction

bp = Blueprint("sso", __name__, url_prefix="/sso")

# What a refused sign-in tells the person: what happened and who can fix it, never the protocol's internals.
REFUSED = {
    "unknown": "Your agency account is not linked to a fieldapp account yet. Ask a coordinator to link it: they"
               " can see this sign-in. Then try again.",
    "waits_for_approval": "A first sign-in to a supervisor's or coordinator's account waits for a coordinator's"
                          " approval. Ask a coordinator, then try again.",
    "wrong_tenant": "That agency account belongs to another organisation. Sign in with your own agency's account.",
    "linked_elsewhere": "This fieldapp account is already linked to another agency account. Ask a coordinator.",
    "disabled": "Your fieldapp account is disabled. Ask a coordinator.",
    "no_role": "Your agency account is in no group that fieldapp gives a role to. Ask a coordinator.",
    "bad_state": "That sign-in link was not started here or has expired. Start again from the sign-in page.",
    "bad_token": "The agency sign-in could not be verified, so you are not signed in. Start again from the sign-in page.",
    "provider_error": "The agency sign-in did not finish. Start again from the sign-in page.",
    "bad_username": "Your agency user name cannot be a fieldapp username. Ask a coordinator to add you.",
}
# Authlib raises these for a `state` that this browser did not start, or that was used already.
STATE_ERRORS = {"mismatching_state", "missing_state"}
# Session keys: the ID token for RP-initiated logout (only if small enough for the cookie).
ID_TOKEN_KEY = "sso_id_token"
MAX_ID_TOKEN_IN_COOKIE = 2000


def configured(app=None):
    """True when an identity provider is set up."""
    return bool((app or current_app).config.get("SSO_ISSUER"))


def _client():
    """The Authlib client for the agency's provider (404 when SSO is off)."""
    if not configured():
        abort(404)
    return current_app.extensions["sso"].agency


def record_refusal(db, reason, subject="", detail=""):
    """Audit an agency sign-in refused for `reason` (a key of REFUSED), under the account it was for."""
    audit.record(db, "sso_refused", subject, f"{reason}: {detail}"[:500], actor=(None, ""))


def _refuse(db, reason, subject="", detail="", status=403):
    """Audit a refused sign-in and answer with the sign-in page saying why; nothing else changes."""
    record_refusal(db, reason, subject, detail)
    return _refused_page(reason, status)


def _refused_page(reason, status=403):
    """The sign-in page, saying why the agency sign-in was refused."""
    return render_template("auth/login.html", error=REFUSED[reason], next_url=None), status


@bp.route("/login")
def start():
    """Send the browser to the agency's provider; `state`, `nonce` and the PKCE verifier stay in this session."""
    client = _client()
    next_url = safe_next(request.args.get("next"))
    # Not a sign-in but a step-up, or the owner linking their account (sso_links.py): the provider must ask
    # who it is again (prompt=login), and say when it did (max_age makes `auth_time` required).
    purpose = session.pop(sso_links.PURPOSE, None) if request.args.get("for") == "link" else None
    if request.args.get("for") == "step_up" and current_user.is_authenticated:
        sso_links.start_purpose("step_up", next_url)
        purpose = session.pop(sso_links.PURPOSE)
    again = {"prompt": "login", "max_age": current_app.config["STEP_UP_MINUTES"] * 60} if purpose else {}
    try:
        response = client.authorize_redirect(url_for("sso.callback", _external=True), **again)
    except requests.RequestException:
        abort(503, description="The agency sign-in service did not answer. Try again, or sign in with your password.")
    session["sso_next"] = next_url
    if purpose:
        session[sso_links.PURPOSE] = purpose
    else:
        session.pop(sso_links.PURPOSE, None)
    return response


@bp.route("/callback")
def callback():
    """Where the provider sends the browser back: check everything, then sign the matched account in."""
    client = _client()
    db = get_db()
    try:
        token = client.authorize_access_token()
    except OAuthError as e:
        reason = "bad_state" if e.error in STATE_ERRORS else "provider_error"
        return _refuse(db, reason, detail=f"{e.error} {e.description or ''}", status=400)
    except JoseError as e:
        # The ID token failed a check: its nonce, issuer, audience, signature or expiry.
        return _refuse(db, "bad_token", detail=str(e), status=400)
    except requests.RequestException:
        abort(503, description="The agency sign-in service did not answer. Try again, or sign in with your password.")
    claims = token.get("userinfo") or {}
    if not claims.get("sub"):
        return _refuse(db, "bad_token", detail="no ID token", status=400)
    tenant = current_app.config["SSO_TENANT_ID"]
    if tenant and claims.get("tid") != tenant:
        return _refuse(db, "wrong_tenant", detail=f"sub {claims['sub']}, tid {str(claims.get('tid'))[:64]}")
    purpose = session.pop(sso_links.PURPOSE, None)
    if purpose is not None:
        return sso_links.finish_purpose(db, claims, purpose, mfa=idp_mfa(claims))
    row, refusal = account_signing_in(db, claims)
    if refusal:
        return _refused_page(refusal[0])
    next_url = session.get("sso_next")
    mfa = idp_mfa(claims)
    # Without the provider's MFA counted, the provider is one factor, like a password:
    # someone with (or whose role must have) a second factor goes on to it.
    response = (None if mfa else second_step(db, row, next_url, first="sso")) or finish_sign_in(
        row, "sso", next_url, mfa=mfa)
    if len(token.get("id_token", "")) <= MAX_ID_TOKEN_IN_COOKIE:
        session[ID_TOKEN_KEY] = token["id_token"]
    return response


def account_signing_in(db, claims):
    """account_for() in its own write transaction, a refusal audited in it: (row, None) or (None, (reason, subject))."""
    with write_transaction(db):
        row, refusal = account_for(db, claims)
        if refusal:
            reason, subject = refusal
            record_refusal(db, reason, subject, f"sub {claims['sub']}")
    return row, refusal


def account_for(db, claims):
    """The account the provider's person signs in to, with its role brought up to date, as (row, None);
    or (None, (reason, subject)) when they may not sign in. Call inside a write transaction.

    A first link follows sso_links.py's rules: a coordinator's mapping, or a
    claim the agency trusts; one to a supervisor's or coordinator's account
    waits for a coordinator's approval; anyone else is kept for a coordinator
    to map, and refused meanwhile.
    """
    row, how = match_account(db, claims)
    name = row["username"] if row else str(claims.get(current_app.config["SSO_USERNAME_CLAIM"]) or "")[:64]
    if how == "linked elsewhere":
        return None, ("linked_elsewhere", row["username"])
    if row and row["disabled"]:
        # Whatever the provider says: only a coordinator here enables an account again.
        return None, ("disabled", name)
    role, refusal = role_from_claims(claims)
    if refusal:
        return None, (refusal, name)
    if how is None:  # nobody the rules can link
        if not current_app.config["SSO_CREATE_ACCOUNTS"]:
            sso_links.ask_a_coordinator(db, claims, None, role, "no mapping, and no claim fieldapp may link by")
            return None, ("unknown", name)
        if sso_links.needs_approval(role or "officer"):
            sso_links.ask_a_coordinator(db, claims, None, role, f"a new {role}'s account")
            return None, ("waits_for_approval", name)
        row = sso_links.create_account(db, claims, role)
        if row is None:
            return None, ("bad_username", name)
        how = "a new account made at its first sign-in"
    if how != "linked":
        if sso_links.needs_approval(row["role"], role):
            sso_links.ask_a_coordinator(db, claims, row["id"], role, f"a first link to a {row['role']}'s account"
                                        f" by {how}" + (f", whose groups make it {role}" if role else ""))
            return None, ("waits_for_approval", row["username"])
        sso_links.link(db, row["id"], claims["sub"], how)
    if role and role != row["role"]:
        accounts.set_role(db, row["id"], role)
        audit.record(db, "role_changed", row["username"], f"{row['role']} -> {role} (from the identity provider)",
                     actor=(None, "sso"))
        row = accounts.user_by_id(db, row["id"])
    return row, None


def match_account(db, claims):
    """Who the provider's person is here, as (row, how): how is "linked", the claim that names them, or
    "linked elsewhere" (the named account is linked to someone else); (None, None) when no rule names anyone.

    A link made earlier wins: once linked, a later change of name or e-mail at
    the provider cannot move the person to another account, and an account
    linked to someone else is never taken over.
    """
    linked = sso_links.linked_account(db, claims["sub"])
    if linked:
        return linked, "linked"
    row, how = sso_links.account_named_by_claims(db, claims)
    if row is None:
        return None, None
    if sso_links.link_of(db, row["id"]):
        return row, "linked elsewhere"
    return row, how


def role_from_claims(claims):
    """The role the provider's claim gives, as (role, None); (None, None) when no mapping is set; or (None, refusal).

    Several mapped groups give the most trusted of their roles (ROLES runs from least to most).
    """
    mapping = current_app.config["SSO_ROLE_MAP"]
    if not mapping:
        return None, None
    values = claims.get(current_app.config["SSO_ROLE_CLAIM"]) or []
    if isinstance(values, str):
        values = [values]
    roles = {mapping[v] for v in values if isinstance(v, str) and v in mapping}
    if not roles:
        return None, "no_role"
    return max(roles, key=ROLES.index), None


def idp_mfa(claims):
    """True when SSO_MFA_FROM_IDP is set and the ID token says the provider checked a second factor.

    `amr` (RFC 8176: Entra ID says "mfa") or `acr` (Keycloak's level of assurance) count,
    each only for the values the agency lists.
    """
    config = current_app.config
    if not config["SSO_MFA_FROM_IDP"]:
        return False
    amr = claims.get("amr") or []
    if isinstance(amr, str):
        amr = [amr]
    return bool(set(amr) & set(config["SSO_MFA_AMR"])) or str(claims.get("acr", "")) in config["SSO_MFA_ACR"]


def logout_url():
    """Where sign-out sends the browser: the provider's end-session endpoint (RP-initiated logout), or None.

    Read before the local session is cleared, since it holds the ID token used as the hint.
    """
    if not configured() or ID_TOKEN_KEY not in session:
        return None
    client = current_app.extensions["sso"].agency
    try:
        metadata = client.load_server_metadata()
    except requests.RequestException:
        return None  # the local sign-out still happens
    if not metadata.get("end_session_endpoint"):
        return None
    return client.create_logout_url(
        # signed_out=1, as after a local sign-out: the sign-in page then has the device forget the saved pages.
        post_logout_redirect_uri=url_for("auth.login", signed_out=1, _external=True),
        id_token_hint=session[ID_TOKEN_KEY], client_id=current_app.config["SSO_CLIENT_ID"],
    )["url"]


def _allow_provider_as_form_target(response):
    """Sign-out is a form post that ends at the provider: the CSP's form-action must name its origin.

    Browsers check form-action on every redirect after a form is sent, so
    without this the provider's end-session page would be blocked.
    """
    parts = urlsplit(current_app.config["SSO_ISSUER"])
    origin = f"{parts.scheme}://{parts.netloc}"
    response.headers.setdefault("Content-Security-Policy",
                                CONTENT_SECURITY_POLICY.replace("form-action 'self'", f"form-action 'self' {origin}"))
    return response


def init_app(app):
    """Check the role map and, when an issuer is configured, register the provider and its routes' helpers."""
    bad_roles = set(app.config["SSO_ROLE_MAP"].values()) - set(ROLES)
    if bad_roles:
        raise ValueError(f"SSO_ROLE_MAP names roles that do not exist: {sorted(bad_roles)}; roles are {ROLES}.")

    @app.context_processor
    def sso_name():
        return {"sso_name": app.config["SSO_NAME"] if configured(app) else None}

    if not configured(app):
        return
    oauth = OAuth(app)
    oauth.register(
        "agency",
        client_id=app.config["SSO_CLIENT_ID"],
        client_secret=app.config["SSO_CLIENT_SECRET"],
        server_metadata_url=app.config["SSO_METADATA_URL"]
        or app.config["SSO_ISSUER"].rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={"scope": app.config["SSO_SCOPES"], "code_challenge_method": "S256",
                       "default_timeout": app.config["SSO_TIMEOUT"]},
    )
    app.extensions["sso"] = oauth
    app.after_request(_allow_provider_as_form_target)
