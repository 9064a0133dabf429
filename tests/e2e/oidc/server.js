// A local OpenID Connect provider standing in for Entra ID: npm oidc-provider over HTTPS with
// a self-signed certificate made at start (openssl), for specs/msal.spec.js.
//
//   node oidc/server.js --port 8441 --redirect http://127.0.0.1:18281/redirect.html \
//        --audience api://switchboard-e2e --ttl 20 --cert-dir DIR
//
// Prints `issuer https://localhost:PORT` once listening. DIR/cert.pem is the test CA that signed
// the server's certificate (the hub's --oidc-ca-file). Test-only extras: GET /test/token?aud=X&sub=Y mints an access token
// signed with the provider's own key for any audience (the wrong-audience case); GET /test/login-hints lists the
// login_hint of every authorization request so far (ssoSilent with the host's user).
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, createSign, randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import Provider from 'oidc-provider';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const port = Number(arg('port', '8441'));
const redirects = arg('redirect', '').split(',').filter(Boolean);
const audience = arg('audience', 'api://switchboard-e2e');
const ttl = Number(arg('ttl', '3600'));
const certDir = arg('cert-dir', '.');
const clientId = arg('client-id', 'switchboard-e2e');
const issuer = `https://localhost:${port}`;
const apiScope = `${audience}/access_as_user`;

// A test CA (cert.pem: the hub's --oidc-ca-file) and a localhost certificate it signs. rustls
// refuses a self-signed CA certificate used directly as the server's own (CaUsedAsEndEntity).
const ssl = (...args) => execFileSync('openssl', args, { stdio: 'ignore', cwd: certDir });
ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-keyout', 'ca-key.pem',
  '-out', 'cert.pem', '-subj', '/CN=Switchboard e2e test CA');
ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'server.csr', '-subj', '/CN=localhost');
writeFileSync(join(certDir, 'server.ext'),
  'basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
ssl('x509', '-req', '-in', 'server.csr', '-CA', 'cert.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial',
  '-days', '1', '-out', 'server.pem', '-extfile', 'server.ext');

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const kid = `e2e-${randomUUID().slice(0, 8)}`;
const jwk = { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    token_endpoint_auth_method: 'none',
    application_type: 'web',
    redirect_uris: redirects,
    post_logout_redirect_uris: redirects,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
  }],
  jwks: { keys: [jwk] },
  pkce: { required: () => true },
  conformIdTokenClaims: false,
  claims: { openid: ['sub'], profile: ['name', 'preferred_username'] },
  // The API scope is also an OIDC scope here, so refresh tokens carry it: MSAL asks for it again
  // on every refresh (otherwise oidc-provider answers invalid_scope to the refresh grant).
  scopes: ['openid', 'profile', 'offline_access', apiScope],
  findAccount: (_ctx, id) => ({
    accountId: id,
    claims: () => ({ sub: id, name: id, preferred_username: id }),
  }),
  // ssoSilent loads the authorization endpoint (prompt=none) in a hidden iframe under the
  // widget's site (127.0.0.1), another site than this provider (localhost): the session cookie
  // must be SameSite=None (as Entra ID's are), not oidc-provider's default Lax.
  cookies: { long: { httpOnly: true, sameSite: 'none' } },
  // Public SPA clients get refresh tokens (MSAL renews silently with them).
  issueRefreshToken: (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  ttl: { AccessToken: ttl, IdToken: 3600, RefreshToken: 86400, Grant: 86400, Session: 86400,
    Interaction: 600, AuthorizationCode: 60 },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => {
        if (resource !== audience) throw new Error(`unknown resource ${resource}`);
        return { scope: apiScope, audience, accessTokenTTL: ttl, accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } } };
      },
    },
  },
  // Consent is implied for the test app (Entra ID: admin consent granted).
  loadExistingGrant: async (ctx) => {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope(`openid profile offline_access ${apiScope}`);
    grant.addResourceScope(audience, apiScope);
    await grant.save();
    return grant;
  },
});
provider.proxy = false;
provider.on('authorization.error', (_ctx, e) => { if (process.env.E2E_DEBUG) console.error(`authorization.error: ${e.error} ${e.error_description}`); });
provider.on('grant.error', (_ctx, e) => console.error(`grant.error: ${e.error} ${e.error_description} [${e.scope}] [${e.error_detail}]`));

const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
function mint(aud, sub) {
  const now = Math.floor(Date.now() / 1000);
  const head = b64({ alg: 'RS256', typ: 'at+jwt', kid });
  const body = b64({ iss: issuer, aud, sub, iat: now, exp: now + 300, scope: apiScope, jti: randomUUID() });
  const sig = createSign('RSA-SHA256').update(`${head}.${body}`).sign(privateKey, 'base64url');
  return `${head}.${body}.${sig}`;
}

const loginHints = [];
const callback = provider.callback();
const server = https.createServer({
  key: readFileSync(join(certDir, 'key.pem')), cert: readFileSync(join(certDir, 'server.pem')),
}, (req, res) => {
  const url = new URL(req.url, issuer);
  if (url.pathname === '/auth' && url.searchParams.has('login_hint')) {
    loginHints.push(url.searchParams.get('login_hint'));
    if (process.env.E2E_DEBUG) console.error(`auth prompt=${url.searchParams.get('prompt')} cookie=${/_session=/.test(req.headers.cookie ?? '')} sec-fetch-site=${req.headers['sec-fetch-site']} dest=${req.headers['sec-fetch-dest']}`);
  }
  if (url.pathname === '/test/login-hints') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(loginHints));
    return;
  }
  if (req.method === 'POST' && url.pathname === '/token') {
    // Like Entra ID, keep renewing SPA sessions that began without prompt=consent (ssoSilent
    // sends prompt=none): oidc-provider leaves offline_access out of such a refresh token
    // (OIDC Core 11) and then refuses a refresh asking for it, which MSAL always does. Drop
    // offline_access from refresh requests; oidc-provider reads an already read body from
    // req.body (lib/shared/selective_body.js).
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const form = new URLSearchParams(Buffer.concat(chunks).toString());
      if (form.get('grant_type') === 'refresh_token' && form.has('scope')) {
        form.set('scope', form.get('scope').split(' ').filter((v) => v !== 'offline_access').join(' '));
      }
      req.body = form.toString();
      callback(req, res);
    });
    return;
  }
  if (url.pathname === '/test/token') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ accessToken: mint(url.searchParams.get('aud'), url.searchParams.get('sub') ?? 'test-user') }));
    return;
  }
  callback(req, res);
});
server.listen(port, '127.0.0.1', () => console.log(`issuer ${issuer}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
