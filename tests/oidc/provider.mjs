// A real OpenID provider for the test session: panva's certified oidc-provider on loopback.
//
//   node tests/oidc/provider.mjs PORT CLIENT_SECRET REDIRECT_URI POST_LOGOUT_REDIRECT_URI
//
// Nothing of the protocol is stubbed: discovery, the authorization endpoint with PKCE,
// the token endpoint, signed ID tokens and RP-initiated logout are oidc-provider's own.
// Only the login screen is replaced, so a test can say who signs in and how:
//   GET /interaction/<uid>?account=<id>&claims=<JSON>&amr=pwd,mfa&acr=<value>
// signs in as <id> (whose ID-token claims are <claims>) and grants what was asked.
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const [port, clientSecret, redirectUri, postLogoutRedirectUri] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const accounts = new Map();

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: 'test-session' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'fieldapp',
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    post_logout_redirect_uris: [postLogoutRedirectUri],
    response_types: ['code'],
    grant_types: ['authorization_code'],
  }, {
    // For browser tests against a live server on 127.0.0.1: a loopback redirect URI with any port (RFC 8252).
    client_id: 'fieldapp-browser',
    client_secret: clientSecret,
    application_type: 'native',
    redirect_uris: ['http://127.0.0.1/sso/callback'],
    post_logout_redirect_uris: ['http://127.0.0.1/login?signed_out=1'],
    response_types: ['code'],
    grant_types: ['authorization_code'],
  }],
  jwks: { keys: [signingKey] },
  cookies: { keys: ['test-session-only'] },
  pkce: { required: () => true },
  // Like Entra ID and Keycloak by default: the claims ride in the ID token.
  conformIdTokenClaims: false,
  claims: {
    openid: ['sub', 'acr', 'amr'],  // how the person signed in, in every ID token
    email: ['email', 'email_verified'],
    // Entra ID's stable object id and tenant, and the claims an agency might name as stable (docs/SSO.md).
    profile: ['name', 'preferred_username', 'oid', 'tid', 'upn', 'employee_id'],
    groups: ['groups'],
  },
  features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: true } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    return { accountId: id, async claims() { return { sub: id, ...(accounts.get(id) || {}) }; } };
  },
});
provider.proxy = false;

provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([\w-]+)$/);
  if (!match || ctx.method !== 'GET') return next();
  const account = ctx.query.account;
  if (!account) {
    ctx.status = 200;
    ctx.body = 'login required: say which account';
    return undefined;
  }
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  accounts.set(account, JSON.parse(ctx.query.claims || '{}'));
  const grant = new provider.Grant({ accountId: account, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope);
  const login = { accountId: account };
  if (ctx.query.amr) login.amr = ctx.query.amr.split(',');
  if (ctx.query.acr) login.acr = ctx.query.acr;
  const to = await provider.interactionResult(ctx.req, ctx.res, { login, consent: { grantId: await grant.save() } });
  ctx.redirect(to);
  return undefined;
});

provider.listen(Number(port), '127.0.0.1', () => console.log(`listening ${issuer}`));
