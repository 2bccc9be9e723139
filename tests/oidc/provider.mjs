// A real OpenID Connect provider (the `oidc-provider` package) for the integration tests,
// listening on loopback. Started by the tests with one JSON argument:
//   {"port": 4000, "issuer": "http://127.0.0.1:4000",
//    "clients": [{"client_id": "...", "client_secret": "...", "redirect_uris": ["..."]}]}
// It prints one JSON line when it listens: {"ready": true, "kid": "..."}.
//
// Accounts: the login form accepts any password; the login name is `subject|email|verified|hd`
// (email defaults to `subject@example.com`, verified to true, "0" makes it unverified; `hd`,
// Google's hosted-domain claim, is left out unless given).
//
// For the tests of what the gateway must refuse, `POST /_test/tamper` with a body of
// `{"mode": "..."}` makes the *next* token response carry an altered ID token, as a
// compromised or misconfigured provider would send it:
//   "audience"    same claims, `aud` another client, signed with this provider's key
//   "issuer"      same claims, `iss` another issuer, signed with this provider's key
//   "expired"     same claims, expired an hour ago, signed with this provider's key
//   "foreign-key" same claims, signed with a key this provider never published
// The provider itself is never changed otherwise.

import { generateKeyPairSync, randomUUID } from 'node:crypto';
import Provider from 'oidc-provider';
import * as jose from 'jose';

const options = JSON.parse(process.argv[2] || '{}');
const port = options.port;
const issuer = options.issuer || `http://127.0.0.1:${port}`;

function rsaJwk(kid) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' };
}

// A fresh signing key on every start: restarting the provider rotates its key.
const signing = rsaJwk(`key-${randomUUID()}`);
const foreign = rsaJwk('foreign-key');

function account(id) {
  const [subject, email, verified, hd] = String(id).split('|');
  return {
    accountId: id,
    async claims() {
      return {
        sub: subject,
        email: email || `${subject}@example.com`,
        email_verified: verified !== '0',
        name: `Person ${subject}`,
        preferred_username: subject.replace(/[^a-z0-9_.-]/gi, '').toLowerCase(),
        ...(hd ? { hd } : {}),
      };
    },
  };
}

const provider = new Provider(issuer, {
  clients: (options.clients || []).map((c) => ({
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...c,
  })),
  jwks: { keys: [signing] },
  findAccount: async (ctx, id) => account(id),
  claims: {
    openid: ['sub', 'hd'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
  },
  // ID tokens carry the scope's claims only when asked to (the default puts them in
  // userinfo only); the tests use both.
  conformIdTokenClaims: !options.claimsInIdToken,
  pkce: { methods: ['S256'], required: () => true },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['test-cookie-key'] },
  // No consent screen: every client is first-party here.
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile');
    await grant.save();
    return grant;
  },
  renderError(ctx, out) {
    ctx.type = 'json';
    ctx.body = out;
  },
});

let tamper = null;
const providerKey = await jose.importJWK(signing, 'RS256');
const foreignKey = await jose.importJWK(foreign, 'RS256');

provider.use(async (ctx, next) => {
  if (ctx.path === '/_test/tamper' && ctx.method === 'POST') {
    const chunks = [];
    for await (const c of ctx.req) chunks.push(c);
    tamper = JSON.parse(Buffer.concat(chunks).toString() || '{}').mode || null;
    ctx.body = { tamper };
    return;
  }
  await next();
  if (ctx.path === '/token' && tamper && ctx.body && ctx.body.id_token) {
    const mode = tamper;
    tamper = null;
    const claims = jose.decodeJwt(ctx.body.id_token);
    let key = providerKey;
    let kid = signing.kid;
    if (mode === 'audience') claims.aud = 'someone-else';
    if (mode === 'issuer') claims.iss = 'http://127.0.0.1:1/other-issuer';
    if (mode === 'expired') {
      claims.iat = Math.floor(Date.now() / 1000) - 7200;
      claims.exp = Math.floor(Date.now() / 1000) - 3600;
    }
    if (mode === 'foreign-key') {
      key = foreignKey;
      kid = foreign.kid;
    }
    ctx.body = {
      ...ctx.body,
      id_token: await new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid }).sign(key),
    };
  }
});

// Quiet: errors the tests provoke on purpose are expected.
provider.on('server_error', (ctx, err) => console.error('server_error', err));

provider.listen(port, '127.0.0.1', () => {
  console.log(JSON.stringify({ ready: true, kid: signing.kid }));
});
