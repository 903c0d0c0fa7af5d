"""Second factors: passkeys and security keys (WebAuthn), authenticator-app codes (TOTP), recovery codes.

Owns the tables `passkeys`, `totp_secrets`, `recovery_codes` and
`webauthn_challenges`, and the step of signing in between a correct password
and a session: `second_step()` is the hook pages.login() calls. Every way in
still ends in sign_in.finish_sign_in().

The relying-party ID and origin come from the config (WEBAUTHN_RP_ID,
WEBAUTHN_ORIGIN) and are checked on every ceremony by py_webauthn; a
challenge is good for one answer only; a signature counter that goes
backwards is refused as a possible cloned key.
"""
import hashlib
import json
import secrets
from pathlib import Path

import pyotp
import segno
from cryptography.fernet import Fernet
from flask import current_app, redirect, session, url_for
from webauthn import (
    generate_authentication_options, generate_registration_options, options_to_json,
    verify_authentication_response, verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, parse_client_data_json
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorAttachment, AuthenticatorSelectionCriteria, AuthenticatorTransport, PublicKeyCredentialDescriptor,
    ResidentKeyRequirement, UserVerificationRequirement,
)
from werkzeug.security import check_password_hash

from . import accounts, notices
from ..audit import log as audit
from .accounts import hash_password
from ..clock import now
from ..web.formatting import when
from ..store.db import one, write_transaction
from .lockout import settle
from .sessions import end_every_session
from .step_up import keys_changed

# How long someone who gave the right password has to give their second factor.
PENDING_SECONDS = 5 * 60
CHALLENGE_SECONDS = 2 * 60
TOTP_STEP = 30
RECOVERY_CODES = 10
# Crockford's base32 less look-alikes: 12 characters are 60 bits, read aloud without confusion.
RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


class Refused(Exception):
    """A second factor was refused: `message` for the person, `action` and `detail` for the audit log."""

    def __init__(self, message, action="second_factor_refused", detail=""):
        super().__init__(message)
        self.message = message
        self.action = action
        self.detail = detail or message


# ---- Who must have one, and who has one ----

def required_for(row):
    """True when this account's role must have a second factor (MFA_REQUIRED_ROLES)."""
    return row["role"] in current_app.config["MFA_REQUIRED_ROLES"]


def has_second_factor(db, user_id):
    """True when the account has a passkey or a confirmed authenticator app."""
    return bool(one(db, "SELECT 1 AS yes FROM passkeys WHERE user_id = ? UNION ALL"
                        " SELECT 1 FROM totp_secrets WHERE user_id = ? AND confirmed_at IS NOT NULL", [user_id, user_id]))


def factors_of(db, user_id):
    """What the Security page shows: passkeys, whether an app is set up, recovery codes left."""
    totp = one(db, "SELECT confirmed_at FROM totp_secrets WHERE user_id = ?", [user_id])
    return {
        "passkeys": list(db.query("SELECT id, name, transports, created_at, last_used_at FROM passkeys"
                                  " WHERE user_id = ? ORDER BY created_at", [user_id])),
        "totp": bool(totp and totp["confirmed_at"]),
        "recovery_left": one(db, "SELECT count(*) AS n FROM recovery_codes WHERE user_id = ? AND used_at IS NULL",
                             [user_id])["n"],
    }


# ---- The step between a correct password and a session ----

def second_step(db, row, next_url, first="password"):
    """After a correct first factor (`first`: "password", or "sso" without the provider's MFA):
    where someone with (or who must have) a second factor goes next, or None.

    Nothing is signed in yet: the browser only remembers, for a few minutes,
    whose password was right. Someone who must have a second factor and has
    none is led to enrol one, and gets a session only when that is done.
    """
    enrol = not has_second_factor(db, row["id"])
    if enrol and not required_for(row):
        return None
    session["pending_sign_in"] = {"user_id": row["id"], "version": row["session_version"], "at": now(),
                                  "next": next_url, "enrol": enrol, "first": first}
    return redirect(url_for("factors.enrol" if enrol else "factors.second_factor"), 303)


def pending_user(db, enrol=None):
    """The account whose password was right on this browser a moment ago, or None.

    None too when it has since been disabled, locked, signed out everywhere,
    or the few minutes ran out. `enrol` asks for a pending enrolment (True)
    or a pending second factor (False) only.
    """
    pending = session.get("pending_sign_in")
    if not isinstance(pending, dict) or now() - pending.get("at", 0) > PENDING_SECONDS:
        return None
    if enrol is not None and pending.get("enrol") != enrol:
        return None
    row = one(db, "SELECT * FROM users WHERE id = ? AND session_version = ?", [pending["user_id"], pending["version"]])
    if row is None or row["disabled"] or (row["locked_until"] and row["locked_until"] > now()):
        return None
    return row


def pending_next():
    """Where the person was going when they signed in."""
    return (session.get("pending_sign_in") or {}).get("next")


def pending_first():
    """How the person mid-sign-in proved their first factor ("password" or "sso"), for the audit log."""
    return (session.get("pending_sign_in") or {}).get("first", "password")


# ---- Authenticator apps (TOTP) ----

def _fernet():
    """The key that encrypts TOTP secrets at rest, made in the instance folder on first use."""
    path = Path(current_app.instance_path) / "second_factor_key"
    if not path.exists():
        path.write_bytes(Fernet.generate_key())
        path.chmod(0o600)
    return Fernet(path.read_bytes().strip())


def start_totp(db, row):
    """A new, unconfirmed authenticator-app secret for `row`, in its own write transaction; its otpauth:// URI.

    None when an app is set up already: a new secret never replaces a confirmed one.
    """
    secret = pyotp.random_base32()
    with write_transaction(db):
        db.execute("INSERT INTO totp_secrets (user_id, secret, confirmed_at) VALUES (?, ?, NULL)"
                   " ON CONFLICT(user_id) DO UPDATE SET secret = excluded.secret, confirmed_at = NULL, last_step = 0"
                   " WHERE totp_secrets.confirmed_at IS NULL",
                   [row["id"], _fernet().encrypt(secret.encode()).decode()])
        return totp_uri(db, row)


def totp_uri(db, row):
    """The otpauth:// URI of `row`'s unconfirmed secret, or None."""
    stored = one(db, "SELECT secret FROM totp_secrets WHERE user_id = ? AND confirmed_at IS NULL", [row["id"]])
    if stored is None:
        return None
    secret = _fernet().decrypt(stored["secret"].encode()).decode()
    return pyotp.TOTP(secret).provisioning_uri(name=row["username"], issuer_name=current_app.config["WEBAUTHN_RP_NAME"])


def qr_svg(text):
    """`text` as a QR code in SVG, drawn here: the secret never leaves for a third party."""
    return segno.make(text, error="m").svg_inline(scale=5, dark="#000", light="#fff", title="QR code to scan")


def _matching_step(db, user_id, code, confirmed):
    """The time step `code` belongs to (now, or one step either side for clock drift), or None."""
    stored = one(db, "SELECT secret, last_step FROM totp_secrets WHERE user_id = ? AND (confirmed_at IS NOT NULL) = ?",
                 [user_id, int(confirmed)])
    code = "".join((code or "").split())
    # isdigit() alone is true of any script's digits (٠١٢...), which compare_digest refuses with a TypeError.
    if stored is None or not (code.isascii() and code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(_fernet().decrypt(stored["secret"].encode()).decode())
    current = int(now() // TOTP_STEP)
    for step in (current - 1, current, current + 1):
        # A code already used is refused even inside its 30 seconds (RFC 6238, 5.2).
        if step > stored["last_step"] and secrets.compare_digest(totp.at(step * TOTP_STEP), code):
            return step
    return None


def confirm_totp(db, row, code):
    """Turn on `row`'s new authenticator app once it shows a right code, in one write transaction; True if it did."""
    with write_transaction(db):
        step = _matching_step(db, row["id"], code, confirmed=False)
        if step is None:
            return False
        db.execute("UPDATE totp_secrets SET confirmed_at = ?, last_step = ? WHERE user_id = ?", [now(), step, row["id"]])
        audit.record(db, "totp_enrolled", row["username"], actor=(row["id"], row["username"]))
        keys_changed(db, row, "An authenticator app was set up for your account")
        return True


def check_totp(db, row, code):
    """Check a sign-in code from `row`'s app; a wrong one counts towards the lock-out. Raises Refused.

    The code is checked and spent in the transaction that reads the lock-out
    (lockout.settle): a right code that arrives as wrong ones lock the account is refused.
    """
    def spend(fresh):
        step = _matching_step(db, row["id"], code, confirmed=True)
        if step is None:
            return False
        db.execute("UPDATE totp_secrets SET last_step = ? WHERE user_id = ?", [step, row["id"]])
        return True

    if settle(db, row, spend) is None:
        raise Refused("That code is not right. Codes change every 30 seconds: type the one your app shows now.",
                      "second_factor_failed", "wrong authenticator-app code")


def remove_totp(db, row):
    """Turn off `row`'s authenticator app. Raises ValueError if it is their last required factor."""
    with write_transaction(db):
        db.execute("DELETE FROM totp_secrets WHERE user_id = ?", [row["id"]])
        if required_for(row) and not has_second_factor(db, row["id"]):
            raise ValueError("Your role must have a second factor: add a passkey before removing the app.")
        audit.record(db, "totp_removed", row["username"])
        keys_changed(db, row, "The authenticator app was removed from your account")


# ---- Recovery codes ----

def new_recovery_codes(db, row, tell=True):
    """Ten new single-use codes for `row`, replacing any before; returned once, stored hashed.

    `tell`: the owner is told, and other sessions end, unless they come with
    an authenticator app just set up, which said so already.
    """
    codes = ["-".join("".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(4)) for _ in range(3))
             for _ in range(RECOVERY_CODES)]
    hashes = [hash_password(code) for code in codes]  # before the write lock: each hash takes a while
    with write_transaction(db):
        db.execute("DELETE FROM recovery_codes WHERE user_id = ?", [row["id"]])
        for code_hash in hashes:
            db.execute("INSERT INTO recovery_codes (user_id, code_hash) VALUES (?, ?)", [row["id"], code_hash])
        audit.record(db, "recovery_codes_made", row["username"], actor=(row["id"], row["username"]))
        if tell:
            keys_changed(db, row, "New recovery codes were made for your account (the old ones stopped working)")
    return codes


def check_code(db, user, code, recovery_code=""):
    """Check an authenticator code, or spend a recovery code when one is given; Refused when it is wrong."""
    if recovery_code:
        return use_recovery_code(db, user, recovery_code)
    return check_totp(db, user, code)


def use_recovery_code(db, row, code):
    """Spend one of `row`'s recovery codes; a wrong or used one counts towards the lock-out. Raises Refused.

    The codes are hashed like passwords, so each check takes a while: they
    are checked first, outside any lock, and the one that matches is spent in
    the write transaction that reads the lock-out (lockout.settle). Of several
    browsers sending one code at once, one spends it and the others are told
    it was used before.
    """
    code = "".join((code or "").lower().split()).replace("-", "")
    code = "-".join(code[i:i + 4] for i in range(0, len(code), 4))[:14]
    stored = list(db.query("SELECT id, code_hash FROM recovery_codes WHERE user_id = ? ORDER BY used_at IS NOT NULL",
                           [row["id"]]))
    match = next((s["id"] for s in stored if check_password_hash(s["code_hash"], code)), None)

    def spend(fresh):
        if match is None:
            return False
        return bool(db.execute("UPDATE recovery_codes SET used_at = ? WHERE id = ? AND user_id = ? AND used_at IS NULL",
                               [now(), match, row["id"]]).rowcount)

    if settle(db, row, spend) is not None:
        return
    if match is not None:
        raise Refused("That recovery code was used before: each one works once. Use another.",
                      "second_factor_failed", "recovery code used before")
    raise Refused("That recovery code is not right.", "second_factor_failed", "wrong recovery code")


# ---- Passkeys and security keys (WebAuthn) ----

def _new_challenge(db, purpose, user_id=None):
    """A fresh challenge on record for one answer."""
    challenge = secrets.token_bytes(32)
    t = now()
    db.execute("DELETE FROM webauthn_challenges WHERE expires_at < ?", [t])
    db.execute("INSERT INTO webauthn_challenges (challenge_hash, purpose, user_id, expires_at) VALUES (?, ?, ?, ?)",
               [hashlib.sha256(challenge).hexdigest(), purpose, user_id, t + CHALLENGE_SECONDS])
    return challenge


def _take_challenge(db, credential, purpose, user_id=None):
    """The challenge this answer signed, taken off the record so it can never be used again. Raises Refused."""
    try:
        response = credential["response"]
        challenge = parse_client_data_json(base64url_to_bytes(response["clientDataJSON"])).challenge
    except Exception:
        raise Refused("The passkey's answer could not be read. Try again.", "passkey_refused", "unreadable answer")
    taken = db.execute("DELETE FROM webauthn_challenges WHERE challenge_hash = ? AND purpose = ? AND user_id IS ?"
                       " AND expires_at >= ?", [hashlib.sha256(challenge).hexdigest(), purpose, user_id, now()])
    if not taken.rowcount:
        raise Refused("That passkey answer was already used or has expired. Try again.", "passkey_refused",
                      "challenge unknown, used or expired (a replay?)")
    return challenge


def _parse(credential_json):
    """The browser's answer as a dict, or Refused."""
    try:
        credential = json.loads(credential_json) if isinstance(credential_json, (str, bytes)) else credential_json
    except ValueError:
        credential = None
    if not isinstance(credential, dict):
        raise Refused("The passkey's answer could not be read. Try again.", "passkey_refused", "unreadable answer")
    return credential


def registration_options(db, row, kind):
    """The options for navigator.credentials.create(), as JSON: `kind` is "passkey" (this device) or "security_key"."""
    existing = list(db.query("SELECT credential_id, user_handle FROM passkeys WHERE user_id = ?", [row["id"]]))
    handle = existing[0]["user_handle"] if existing else bytes_to_base64url(secrets.token_bytes(32))
    options = generate_registration_options(
        rp_id=current_app.config["WEBAUTHN_RP_ID"],
        rp_name=current_app.config["WEBAUTHN_RP_NAME"],
        user_name=row["username"],
        user_id=base64url_to_bytes(handle),
        user_display_name=row["display_name"],
        challenge=_new_challenge(db, "register", row["id"]),
        authenticator_selection=AuthenticatorSelectionCriteria(
            authenticator_attachment=(AuthenticatorAttachment.PLATFORM if kind == "passkey"
                                      else AuthenticatorAttachment.CROSS_PLATFORM),
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(c["credential_id"])) for c in existing],
    )
    session["passkey_handle"] = handle
    return options_to_json(options)


def register_passkey(db, row, credential_json, name):
    """Keep the new credential the browser made for `row`, named `name`; returns its id. Raises Refused."""
    if name is not None and not isinstance(name, str):
        raise Refused("Give the passkey a name in words, such as 'Blue key'.", "passkey_refused", "name not text")
    name = " ".join((name or "").split())[:60] or "Passkey"
    credential = _parse(credential_json)
    with write_transaction(db):
        challenge = _take_challenge(db, credential, "register", row["id"])
        try:
            verified = verify_registration_response(
                credential=credential, expected_challenge=challenge,
                expected_rp_id=current_app.config["WEBAUTHN_RP_ID"],
                expected_origin=current_app.config["WEBAUTHN_ORIGIN"],
                require_user_verification=True,
            )
        except (InvalidRegistrationResponse, KeyError, TypeError, ValueError) as e:
            raise Refused(_plain_reason(e), "passkey_refused", f"registration: {e}")
        transports = credential.get("response", {}).get("transports") or []
        transports = ",".join(t for t in transports if t in {x.value for x in AuthenticatorTransport})
        cursor = db.execute(
            "INSERT OR IGNORE INTO passkeys (user_id, credential_id, public_key, sign_count, user_handle, name, transports,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [row["id"], bytes_to_base64url(verified.credential_id), verified.credential_public_key, verified.sign_count,
             session.get("passkey_handle") or bytes_to_base64url(secrets.token_bytes(32)), name, transports, now()],
        )
        if not cursor.rowcount:
            raise Refused("That passkey is already registered.", "passkey_refused", "credential already registered")
        audit.record(db, "passkey_added", row["username"], f"{name} ({transports or 'transport not given'})",
                     actor=(row["id"], row["username"]))
        keys_changed(db, row, f"A passkey or security key named “{name}” was added to your account")
    return cursor.lastrowid


def authentication_options(db, row=None):
    """The options for navigator.credentials.get(), as JSON.

    With no `row` (the sign-in page's button) the browser offers any passkey
    it holds for this site: no username is needed. With a `row` (the second
    step after a password) only that account's credentials are asked for.
    """
    allow = []
    if row is not None:
        allow = [PublicKeyCredentialDescriptor(
            id=base64url_to_bytes(c["credential_id"]),
            transports=[AuthenticatorTransport(t) for t in c["transports"].split(",") if t] or None,
        ) for c in db.query("SELECT credential_id, transports FROM passkeys WHERE user_id = ?", [row["id"]])]
    options = generate_authentication_options(
        rp_id=current_app.config["WEBAUTHN_RP_ID"],
        challenge=_new_challenge(db, "sign_in", row["id"] if row is not None else None),
        allow_credentials=allow,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return options_to_json(options)


def authenticate_passkey(db, credential_json, row=None):
    """The account whose passkey signed this answer, checked in full; raises Refused.

    `row`: the account whose password was just given, whose key this must be.
    """
    credential = _parse(credential_json)
    with write_transaction(db):
        challenge = _take_challenge(db, credential, "sign_in", row["id"] if row is not None else None)
        stored = one(db, "SELECT passkeys.*, users.username FROM passkeys JOIN users ON users.id = passkeys.user_id"
                         " WHERE credential_id = ?", [str(credential.get("id", ""))[:512]])
        if stored is None or (row is not None and stored["user_id"] != row["id"]):
            raise Refused("This passkey is not registered here. Sign in with your password, then add it on your"
                          " Security page.", "passkey_refused", "unknown credential")
        try:
            # The stored count is compared below, once the signature is known to be good:
            # only then is a counter going backwards evidence of a cloned key.
            verified = verify_authentication_response(
                credential=credential, expected_challenge=challenge,
                expected_rp_id=current_app.config["WEBAUTHN_RP_ID"],
                expected_origin=current_app.config["WEBAUTHN_ORIGIN"],
                credential_public_key=stored["public_key"], credential_current_sign_count=0,
                require_user_verification=True,
            )
        except (InvalidAuthenticationResponse, KeyError, TypeError, ValueError) as e:
            raise Refused(_plain_reason(e), "passkey_refused", f"{stored['username']}: {e}")
        if (verified.new_sign_count or stored["sign_count"]) and verified.new_sign_count <= stored["sign_count"]:
            raise Refused("This key was refused: its counter went backwards, which a copied key does."
                          " Tell your supervisor, and sign in another way.", "passkey_cloned",
                          f"{stored['username']}, {stored['name']}: sign count {verified.new_sign_count}"
                          f" after {stored['sign_count']} (possible cloned key)")
        db.execute("UPDATE passkeys SET sign_count = ?, last_used_at = ? WHERE id = ?",
                   [verified.new_sign_count, now(), stored["id"]])
        user = one(db, "SELECT * FROM users WHERE id = ?", [stored["user_id"]])
    if user["disabled"]:
        raise Refused("Sign-in failed: this account is disabled. Ask your supervisor.", "passkey_refused",
                      f"{user['username']}: account disabled")
    return user


def _plain_reason(error):
    """What a person can do about a refused ceremony, from py_webauthn's reason."""
    text = str(error)
    if "origin" in text:
        return "This passkey answered for another web address than this app's. Nothing was done."
    if "RP ID" in text:
        return "This passkey belongs to another site. Nothing was done."
    if "verif" in text and "signature" not in text:
        return "Your passkey must check it is you (fingerprint, face or PIN). Try again."
    return "This passkey's answer did not check out. Nothing was done; try again."


def rename_passkey(db, row, passkey_id, name):
    """Rename one of `row`'s passkeys; True if it was theirs."""
    name = " ".join((name or "").split())[:60]
    if not name:
        raise ValueError("Give the passkey a name, such as 'Blue key' or 'My phone'.")
    done = db.execute("UPDATE passkeys SET name = ? WHERE id = ? AND user_id = ?", [name, passkey_id, row["id"]]).rowcount
    if done:
        audit.record(db, "passkey_renamed", row["username"], name)
    return bool(done)


def remove_passkey(db, row, passkey_id):
    """Remove one of `row`'s passkeys; True if it was theirs. Raises ValueError if it is their last required factor."""
    with write_transaction(db):
        passkey = one(db, "SELECT name FROM passkeys WHERE id = ? AND user_id = ?", [passkey_id, row["id"]])
        if passkey is None:
            return False
        db.execute("DELETE FROM passkeys WHERE id = ?", [passkey_id])
        if required_for(row) and not has_second_factor(db, row["id"]):
            raise ValueError("Your role must have a second factor: add another before removing your last one.")
        audit.record(db, "passkey_removed", row["username"], passkey["name"])
        keys_changed(db, row, f"The passkey or security key named “{passkey['name']}” was removed from your account")
    return True


def added_since(db, user_id, since):
    """The account's second factors added after `since`, which a password change offers to remove."""
    totp = one(db, "SELECT confirmed_at FROM totp_secrets WHERE user_id = ? AND confirmed_at >= ?", [user_id, since])
    return {"passkeys": list(db.query("SELECT id, name, transports, created_at FROM passkeys"
                                      " WHERE user_id = ? AND created_at >= ? ORDER BY created_at", [user_id, since])),
            "totp": totp["confirmed_at"] if totp else None}


def change_own_password(db, row, new, since, passkey_ids, totp):
    """The signed-in person of `row` changes their password, and may remove the factors added after `since`.

    One write transaction: the new password (every session of the account
    ends), the removals, the audit and the notice. Returns the account's row
    as it now is, read inside it, and what was removed, as words. Raises
    ValueError, changing nothing, as remove_added_since() does.
    """
    with write_transaction(db):
        accounts.set_password(db, row["id"], accounts.hash_password(new))
        removed = remove_added_since(db, row, since, passkey_ids, totp)
        audit.record(db, "password_changed", row["username"])
        notices.tell(db, row["id"], f"Your password was changed on {when(now())}"
                                    f"{', and ' + ' and '.join(removed) + ' removed' if removed else ''}."
                                    " Not you? Ask a coordinator to reset your password at once.")
        # Read inside the transaction: a change made at once on another device
        # must not leave this one holding a version that is no longer current.
        return accounts.user_by_id(db, row["id"]), removed


def remove_added_since(db, row, since, passkey_ids, totp):
    """Remove the chosen factors added after `since` (a password change's "remove what I did not add").

    Call inside the password change's write transaction; returns what was
    removed, as words. Raises ValueError, changing nothing, when the role
    would be left with no second factor.
    """
    recent = added_since(db, row["id"], since)
    removed = []
    for key in recent["passkeys"]:
        if key["id"] in passkey_ids:
            db.execute("DELETE FROM passkeys WHERE id = ?", [key["id"]])
            audit.record(db, "passkey_removed", row["username"], f"{key['name']} (with a password change)")
            removed.append(f'the passkey "{key["name"]}"')
    if totp and recent["totp"]:
        db.execute("DELETE FROM totp_secrets WHERE user_id = ?", [row["id"]])
        audit.record(db, "totp_removed", row["username"], "with a password change")
        removed.append("the authenticator app")
    if removed and required_for(row) and not has_second_factor(db, row["id"]):
        raise ValueError("Your role must keep a second factor: keep one of yours, or ask a coordinator to reset them.")
    return removed


def reset_second_factors(db, user_id):
    """Remove every second factor of an account and sign it out everywhere (a coordinator's reset).

    Someone whose role must have one enrols again right after their password.
    """
    db.execute("DELETE FROM passkeys WHERE user_id = ?", [user_id])
    db.execute("DELETE FROM totp_secrets WHERE user_id = ?", [user_id])
    db.execute("DELETE FROM recovery_codes WHERE user_id = ?", [user_id])
    accounts.raise_session_version(db, user_id)
    end_every_session(db, user_id)


def reset_factors(db, target):
    """A coordinator resets the second factors of the account `target` (a row of `users`), audited, in one transaction."""
    with write_transaction(db):
        reset_second_factors(db, target["id"])
        audit.record(db, "second_factors_reset", target["username"])


def record_refusal(db, refusal, subject="", actor=None):
    """Audit a refused second factor (`Refused`), under the account it was for; nobody is signed in yet unless `actor`."""
    audit.record(db, refusal.action, subject, refusal.detail, actor=actor or (None, ""))
