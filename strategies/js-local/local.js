// The `local` strategy (username and password) in JavaScript: the same behaviour and storage
// layout as the Rust one (strategies/local) and the Python one (strategies/python-local).
//
//   user:<username> -> {"kuid": …, "hash": "<argon2id PHC string>"}
//   kuid:<kuid>     -> "<username>"
//
// Built by ./build.sh into target/wasm32-wasip2/strategy/js_local.wasm.
import { strategy, storage, crypto, errors, login, parseCredentials, queryArg } from 'sandgate-strategy';

const WRONG = 'wrong username or password';
const MAX_USERNAME_BYTES = 256;

const userKey = (username) => `user:${username}`;
const kuidKey = (kuid) => `kuid:${kuid}`;
const info = (username, kuid) => ({ username, kuid });
const noCredentials = (kuid) => errors.conflict(`No credentials found for user "${kuid}".`);

/** A field that must be a string when present. */
function text(creds, name) {
  const value = creds[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw errors.badRequest(`"${name}" must be a string.`);
  return value;
}

function account(username) {
  if (crypto.utf8(username).length > MAX_USERNAME_BYTES) return null;
  const acc = storage.getJson(userKey(username));
  if (acc !== null && (typeof acc.kuid !== 'string' || typeof acc.hash !== 'string')) {
    throw errors.internal(`stored account of ${JSON.stringify(username)} is corrupt`);
  }
  return acc;
}

const usernameOf = (kuid) => storage.getJson(kuidKey(kuid));

function validate(kuid, credentials, isUpdate) {
  const creds = parseCredentials(credentials);
  if ('kuid' in creds) throw errors.badRequest('kuid cannot be specified in credentials.');
  const username = text(creds, 'username');
  const password = text(creds, 'password');
  if (isUpdate) {
    if (username === undefined && password === undefined) throw errors.badRequest('Missing username or password.');
  } else {
    if (!username) throw errors.badRequest('Username required.');
    if (password === undefined) throw errors.badRequest('Password required.');
  }
  if (username === '') throw errors.badRequest('Username required.');
  if (username !== undefined && crypto.utf8(username).length > MAX_USERNAME_BYTES) {
    throw errors.badRequest(`Username too long (at most ${MAX_USERNAME_BYTES} bytes).`);
  }
  if (password === '') throw errors.badRequest('Password needed.');
  if (username !== undefined) {
    const taken = account(username);
    if (taken && taken.kuid !== kuid) throw errors.conflict(`Login "${username}" is already used.`);
  }
}

export const authenticator = strategy({
  fields: () => ['username', 'password'],

  verify(req) {
    let body;
    try {
      body = parseCredentials(req.credentials);
    } catch {
      body = {};
    }
    let { username, password } = body;
    // As passport-local: from the body, else from the query string.
    if (typeof username !== 'string' || typeof password !== 'string' || !username || !password) {
      username = queryArg(req, 'username');
      password = queryArg(req, 'password');
      if (!username || !password) throw errors.rejected('Missing credentials');
    }
    const acc = account(username);
    if (acc === null) {
      // Unknown: the same hash check as a wrong password, so the time tells nothing.
      crypto.verifyPassword(password, crypto.dummyHash());
      throw errors.rejected(WRONG);
    }
    if (crypto.verifyPassword(password, acc.hash)) return login.user(acc.kuid);
    throw errors.rejected(WRONG);
  },

  validate,

  create(kuid, credentials) {
    validate(kuid, credentials, false);
    if (usernameOf(kuid) !== null) throw errors.conflict(`A strategy already exists for user "${kuid}".`);
    const creds = parseCredentials(credentials);
    const username = text(creds, 'username');
    storage.setJson(userKey(username), { kuid, hash: crypto.hashPassword(text(creds, 'password')) });
    storage.setJson(kuidKey(kuid), username);
    return info(username, kuid);
  },

  update(kuid, credentials) {
    validate(kuid, credentials, true);
    const current = usernameOf(kuid);
    if (current === null) throw noCredentials(kuid);
    const creds = parseCredentials(credentials);
    const username = text(creds, 'username') ?? current;
    const password = text(creds, 'password');
    const acc = account(current);
    if (acc === null) throw noCredentials(kuid);
    const hash = password === undefined ? acc.hash : crypto.hashPassword(password);
    if (username !== current) storage.delete(userKey(current));
    storage.setJson(userKey(username), { kuid, hash });
    storage.setJson(kuidKey(kuid), username);
    return info(username, kuid);
  },

  delete(kuid) {
    const username = usernameOf(kuid);
    if (username === null) throw noCredentials(kuid);
    storage.delete(userKey(username));
    storage.delete(kuidKey(kuid));
  },

  exists: (kuid) => usernameOf(kuid) !== null,

  getInfo(kuid) {
    const username = usernameOf(kuid);
    if (username === null) throw noCredentials(kuid);
    return info(username, kuid);
  },

  getById(username) {
    const acc = account(username);
    if (acc === null) throw errors.conflict(`No credentials found for username "${username}".`);
    return info(username, acc.kuid);
  },
});
