// A real OpenID provider for Sandgate's `oidc` tests (runtime/tests/oidc.rs): panva's
// oidc-provider (OpenID Certified), on 127.0.0.1 over plain HTTP, with one confidential
// client, PKCE required, its built-in development login and consent pages (any login name
// is accepted and becomes the `sub`), and an RS256 key made at start.
//
//   node oidc-provider.mjs            CLIENT_ID, CLIENT_SECRET, REDIRECT_URI from the env
//
// Prints "LISTENING <issuer>" once it accepts requests (the library prints notices of its
// own on stdout: look for the prefix).
import * as http from 'node:http';
import * as crypto from 'node:crypto';
import Provider from 'oidc-provider';

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(0, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const key = { ...privateKey.export({ format: 'jwk' }), kid: 'rs256-1', alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: process.env.CLIENT_ID ?? 'sandgate',
    client_secret: process.env.CLIENT_SECRET ?? 'sandgate-secret',
    redirect_uris: (process.env.REDIRECT_URI ?? 'http://127.0.0.1:7512/_login/oidc').split(','),
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [key] },
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  claims: { openid: ['sub'], profile: ['name'] },
  // The scopes' claims in the ID token too (as many providers do), not only at userinfo.
  conformIdTokenClaims: false,
  async findAccount(ctx, id) {
    return { accountId: id, async claims() { return { sub: id, name: `Person ${id}` }; } };
  },
  // Explicit lifetimes (seconds): the defaults print a notice on first use.
  ttl: { AccessToken: 3600, AuthorizationCode: 60, IdToken: 3600, Interaction: 600, Session: 3600, Grant: 3600 },
  cookies: { keys: ['sandgate-test-cookie-key'] },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

// HOSTILE=1: the provider turns hostile for people whose login name is `tamper-<what>`: their
// ID token is altered after it was issued, for the tests that the strategy refuses each kind.
//   aud, iss, nonce, exp   that claim replaced (re-signed with the provider's real key)
//   signature              the claims re-signed by another key (same kid)
//   alg-none               unsigned, `"alg":"none"`
//   hs256                  signed with HS256 keyed by the client secret (which the client knows)
if (process.env.HOSTILE) {
  const b64 = (x) => Buffer.from(x).toString('base64url');
  const { privateKey: otherKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const secret = process.env.CLIENT_SECRET ?? 'sandgate-secret';
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path !== '/token' || !ctx.body || !ctx.body.id_token) return;
    const [header, payload] = ctx.body.id_token.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url'));
    const what = typeof claims.sub === 'string' && claims.sub.startsWith('tamper-') ? claims.sub.slice(7) : null;
    if (!what) return;
    let head = JSON.parse(Buffer.from(header, 'base64url'));
    let sign = (input) => crypto.sign('sha256', Buffer.from(input), privateKey);
    if (what === 'aud') claims.aud = 'someone-else';
    else if (what === 'iss') claims.iss = 'http://127.0.0.1:1';
    else if (what === 'nonce') claims.nonce = 'not-this-login';
    else if (what === 'exp') claims.exp = Math.floor(Date.now() / 1000) - 3600;
    else if (what === 'signature') sign = (input) => crypto.sign('sha256', Buffer.from(input), otherKey);
    else if (what === 'alg-none') { head = { alg: 'none' }; sign = () => Buffer.alloc(0); }
    else if (what === 'hs256') {
      head = { alg: 'HS256', kid: head.kid };
      sign = (input) => crypto.createHmac('sha256', secret).update(input).digest();
    } else throw new Error(`unknown tampering: ${what}`);
    const signed = `${b64(JSON.stringify(head))}.${b64(JSON.stringify(claims))}`;
    ctx.body = { ...ctx.body, id_token: `${signed}.${b64(sign(signed))}` };
  });
}
server.on('request', provider.callback());
console.log(`LISTENING ${issuer}`);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
