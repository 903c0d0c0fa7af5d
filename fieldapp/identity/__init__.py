"""Identity: who someone is, how they prove it, and what they may open.

- `access`: login_manager, `role_required` (every area's door), the session limits (idle lock, a
  shift's lifetime) and the forced password change;
- `accounts`: the one owner of `users`, and the roles (ROLES, AT_WORK);
- `sessions`: each sign-in's record on the server (owns `sessions`);
- `sign_in`: finish_sign_in, where every way in ends; `pages`: sign-in, sign-out, password;
- `lockout` and `throttle`: checking a password or code under the lock (owns `sign_in_attempts`),
  and the limit per network address;
- `second_factors` and `second_factor_pages`: passkeys, authenticator codes, recovery codes (owns
  `passkeys`, `totp_secrets`, `recovery_codes`, `webauthn_challenges`), the Security page;
- `step_up`, `step_up_pages`, `notices`: a fresh proof before changing how an account signs in, and
  telling the owner on every device (owns `account_notices`);
- `sso` and `sso_links`: single sign-on, linking only on what the provider vouches for (owns `sso_links`,
  `sso_link_requests`); `unlock`: a coordinator lets a locked account in;
- `admin`: a coordinator's changes to accounts; `cli`: the `users` commands.
"""
