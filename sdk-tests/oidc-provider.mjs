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

// MIXUP_AUDIENCE=<aud>: the provider turns hostile and hands out ID tokens meant for another
// client (signed with its real key), for the test that the strategy refuses them.
if (process.env.MIXUP_AUDIENCE) {
  const b64 = (x) => Buffer.from(x).toString('base64url');
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path === '/token' && ctx.body && ctx.body.id_token) {
      const [header, payload] = ctx.body.id_token.split('.');
      const claims = JSON.parse(Buffer.from(payload, 'base64url'));
      claims.aud = process.env.MIXUP_AUDIENCE;
      const signed = `${header}.${b64(JSON.stringify(claims))}`;
      const signature = crypto.sign('sha256', Buffer.from(signed), privateKey);
      ctx.body = { ...ctx.body, id_token: `${signed}.${b64(signature)}` };
    }
  });
}
server.on('request', provider.callback());
console.log(`LISTENING ${issuer}`);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
