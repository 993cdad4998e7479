// The Node baseline of `make bench`: Express + Passport (passport-local, and a custom API-key
// strategy) + jsonwebtoken, doing the apikey and local logins' work, the way a Node login
// service commonly does it. Configured like the native baseline: BASELINE_LISTEN
// (127.0.0.1:7601), BASELINE_KEY (user "bot"'s API key), BASELINE_USER ("name:password").
'use strict';

const crypto = require('node:crypto');
const express = require('express');
const passport = require('passport');
const LocalStrategy = require('passport-local').Strategy;
const CustomStrategy = require('passport-custom').Strategy;
const jwt = require('jsonwebtoken');
const argon2 = require('argon2');

const [host, port] = (process.env.BASELINE_LISTEN || '127.0.0.1:7601').split(':');
const key = process.env.BASELINE_KEY || 'bench-key';
const [username, password] = (process.env.BASELINE_USER || 'bot:pw').split(':');
// A KeyObject: jsonwebtoken turns a string or Buffer secret into one on every sign (0.6 ms each
// here), which would make this baseline slower than a tuned Node service is.
const secret = crypto.createSecretKey(crypto.randomBytes(32));

const sha256 = (text) => crypto.createHash('sha256').update(text).digest('hex');
// What strategies/apikey keeps: sha256(key) → kuid, kuid → the fingerprint.
const keys = new Map([[sha256(key), 'bot']]);
const fingerprints = new Map([['bot', sha256(key)]]);
const accounts = new Map();

passport.use('apikey', new CustomStrategy((req, done) => {
  const given = req.body && req.body.key;
  if (typeof given !== 'string') return done(null, false);
  const fingerprint = sha256(given);
  const kuid = keys.get(fingerprint);
  if (!kuid) return done(null, false);
  const stored = Buffer.from(fingerprints.get(kuid) || '');
  const ok = stored.length === fingerprint.length && crypto.timingSafeEqual(stored, Buffer.from(fingerprint));
  return done(null, ok ? { kuid } : false);
}));

passport.use('local', new LocalStrategy({ session: false }, (name, pw, done) => {
  const account = accounts.get(name);
  if (!account) return done(null, false);
  argon2.verify(account.hash, pw).then((ok) => done(null, ok ? { kuid: account.kuid } : false), done);
}));

const envelope = (res, status, action, result, error) => res.status(status).json({
  action, controller: action === 'healthCheck' ? 'server' : 'auth', error, headers: {},
  node: 'baseline-node', requestId: crypto.randomUUID(), result, status, volatile: null,
});

const login = (strategy) => (req, res, next) => passport.authenticate(strategy, { session: false }, (err, user) => {
  if (err) return next(err);
  if (!user) {
    return envelope(res, 401, 'login', null, {
      id: 'plugin.strategy.missing_user', code: 67305492, message: 'Unable to log in', props: [], status: 401,
    });
  }
  const issued = Date.now();
  const token = jwt.sign({ _id: user.kuid, jti: `${issued}-${crypto.randomBytes(8).toString('hex')}` }, secret,
    { algorithm: 'HS256', expiresIn: '1h' });
  return envelope(res, 200, 'login', { _id: user.kuid, jwt: `kauth-${token}`, expiresAt: issued + 3600000, ttl: 3600000 }, null);
})(req, res, next);

const app = express();
app.use(express.json());
app.use(passport.initialize());
app.get('/_healthcheck', (req, res) => envelope(res, 200, 'healthCheck', { status: 'green' }, null));
app.post('/_login/apikey', login('apikey'));
app.post('/_login/local', login('local'));

// Sandgate's default argon2id parameters: m = 19456 KiB, t = 2, p = 1.
argon2.hash(password, { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 }).then((hash) => {
  accounts.set(username, { kuid: 'bot', hash });
  app.listen(Number(port), host, () => console.log(`baseline-node on ${host}:${port}`));
});
