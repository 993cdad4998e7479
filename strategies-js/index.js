// The author SDK for Sandgate strategies written in JavaScript: the host's interfaces of
// `sandgate:strategy@0.2.0` (wit/strategy.wit) with the conveniences the Rust SDK has (JSON
// in storage, the error variants, the login answers), and `strategy()`, which turns your
// object into the `authenticator` export.
//
//   import { strategy, storage, crypto, log, config, errors, login, parseCredentials } from 'sandgate-strategy';
//   export const authenticator = strategy({ fields() { … }, verify(req) { … }, … });
//
// Built into a component with jco's QuickJS backend (see strategies/js-local/build.sh):
// `list<u8>` is a Uint8Array, `u64` a number, `option<T>` null or the value. There is no
// TextEncoder, no fetch and no timers: the host's interfaces are the whole world.
import * as storageImport from 'sandgate:strategy/storage@0.2.0';
import * as cryptoImport from 'sandgate:strategy/crypto@0.2.0';
import * as logImport from 'sandgate:strategy/log@0.2.0';
import * as configImport from 'sandgate:strategy/config@0.2.0';

// QuickJS hands an interface over as a default object, StarlingMonkey as named exports.
const host = (ns) => ns.default ?? ns;
const rawStorage = host(storageImport);
const rawCrypto = host(cryptoImport);
const rawLog = host(logImport);
const rawConfig = host(configImport);

/** How a strategy says no: throw one of these (the host turns it into a Kuzzle error). */
export const errors = {
  /** Wrong credentials: 401 plugin.strategy.missing_user. */
  rejected: (message) => ({ tag: 'rejected', val: String(message) }),
  /** Malformed credentials: 400 plugin.strategy.bad_request. */
  badRequest: (message) => ({ tag: 'bad-request', val: String(message) }),
  /** Conflicts with what exists (a login already used): 412 plugin.strategy.precondition. */
  conflict: (message) => ({ tag: 'conflict', val: String(message) }),
  /** No such credentials: 404 plugin.strategy.not_found. */
  notFound: (message) => ({ tag: 'not-found', val: String(message) }),
  /** Anything else: 500. */
  internal: (message) => ({ tag: 'internal', val: String(message) }),
};

const isStrategyError = (e) =>
  e !== null && typeof e === 'object' && !(e instanceof Error) && typeof e.tag === 'string' && 'val' in e;

/** What `verify` answers. */
export const login = {
  /** These credentials are the user `kuid`'s. */
  user: (kuid) => ({ tag: 'user', val: String(kuid) }),
  /** The login's next step: the host answers 302 with this Location. */
  redirect: (url) => ({ tag: 'redirect', val: String(url) }),
  /** Someone with no account yet (only if the operator allowed provisioning). */
  provision: (credentials, content = {}) => ({
    tag: 'provision',
    val: { credentials: JSON.stringify(credentials), content: JSON.stringify(content) },
  }),
};

/** A host call's refusal (`result<_, string>`) as an `internal` strategy error. */
function hostCall(what, f) {
  try {
    return f();
  } catch (e) {
    throw errors.internal(`${what}: ${e && 'payload' in e ? e.payload : e}`);
  }
}

/** Your private key-value storage: nobody else's, and nobody else reads yours. */
export const storage = {
  /** The value of `key`, or null. */
  get: (key) => rawStorage.get(key) ?? null,
  set: (key, value) => hostCall(`storage.set ${key}`, () => rawStorage.set(key, value)),
  /** Reads as absent after `ttlMs` (an OAuth state, a nonce). */
  setExpiring: (key, value, ttlMs) =>
    hostCall(`storage.setExpiring ${key}`, () => rawStorage.setExpiring(key, value, ttlMs)),
  /** Whether there was a value. */
  delete: (key) => rawStorage.delete(key),
  listKeys: (prefix, limit = 100) => rawStorage.listKeys(prefix, limit),
  /** The JSON value of `key`, or null; a stored value that is not JSON is an internal error. */
  getJson(key) {
    const text = storage.get(key);
    if (text === null) return null;
    try {
      return JSON.parse(text);
    } catch (e) {
      throw errors.internal(`stored value ${JSON.stringify(key)} is not JSON: ${e.message}`);
    }
  },
  setJson: (key, value) => storage.set(key, JSON.stringify(value)),
  setJsonExpiring: (key, value, ttlMs) => storage.setExpiring(key, JSON.stringify(value), ttlMs),
  /** Reads and deletes (single-use values). */
  takeJson(key) {
    const value = storage.getJson(key);
    if (value !== null) storage.delete(key);
    return value;
  },
};

/** Cryptography run natively by the host. Bytes are Uint8Arrays. */
export const crypto = {
  /** argon2id, as a PHC string (the host's parameters; it runs off your CPU budget). */
  hashPassword: (password) => rawCrypto.hashPassword(password),
  verifyPassword: (password, phc) => rawCrypto.verifyPassword(password, phc),
  /** A hash to check unknown users against, so they cost what a wrong password costs. */
  dummyHash: () => rawCrypto.dummyHash(),
  sha256: (bytes) => rawCrypto.sha256(bytes),
  hmacSha256: (key, data) => rawCrypto.hmacSha256(key, data),
  hmacSha1: (key, data) => rawCrypto.hmacSha1(key, data),
  hmacSha512: (key, data) => rawCrypto.hmacSha512(key, data),
  randomBytes: (length) => rawCrypto.randomBytes(length),
  constantTimeEq: (a, b) => rawCrypto.constantTimeEq(a, b),
  nowMs: () => Number(rawCrypto.nowMs()),
  /**
   * A JWS checked against a JWKS (RS256, ES256, EdDSA): its payload text; the claims are yours
   * to check. A token that does not verify throws `errors.rejected` saying why.
   */
  jwsVerify(token, jwks) {
    try {
      return rawCrypto.jwsVerify(token, jwks);
    } catch (e) {
      throw errors.rejected(`The token does not verify: ${e && 'payload' in e ? e.payload : e}`);
    }
  },
  /** Lower-case hex of bytes. */
  hex: (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(''),
  /** UTF-8 bytes of a string (QuickJS has no TextEncoder). */
  utf8(text) {
    const out = [];
    for (const ch of text) {
      let c = ch.codePointAt(0);
      if (c < 0x80) out.push(c);
      else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
      else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    }
    return new Uint8Array(out);
  },
};

/** Lines in the server's log, tagged with your strategy and the request (capped per call). */
export const log = {
  trace: (message) => rawLog.log('trace', String(message)),
  debug: (message) => rawLog.log('debug', String(message)),
  info: (message) => rawLog.log('info', String(message)),
  warn: (message) => rawLog.log('warn', String(message)),
  error: (message) => rawLog.log('error', String(message)),
};

/** The configuration the operator registered you with. */
export const config = {
  text: () => rawConfig.get(),
  /** As a JSON object ({} when none was given). */
  json() {
    const text = rawConfig.get();
    try {
      return text ? JSON.parse(text) : {};
    } catch (e) {
      throw errors.internal(`the strategy's config is not JSON: ${e.message}`);
    }
  },
};

/** The credentials a client sent (JSON text) as an object, or a 400. */
export function parseCredentials(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw errors.badRequest(`Invalid credentials: ${e.message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw errors.badRequest('Credentials must be an object.');
  }
  return value;
}

/** The value of a `query` argument of a login request, or null. */
export function queryArg(req, name) {
  const pair = req.query.find(([key]) => key === name);
  return pair ? pair[1] : null;
}

const optional = {
  fields: () => [],
  validate: () => undefined,
  getInfo: () => '{}',
  getById: (id) => {
    throw errors.notFound(`No credentials found for "${id}".`);
  },
};

/**
 * Your strategy as the `authenticator` export. Implement `verify`, `create`, `update`,
 * `delete` and `exists` (optionally `fields`, `validate`, `getInfo`, `getById`). `create`,
 * `update`, `getInfo` and `getById` may return an object: it is sent as JSON. An exception
 * that is not one of `errors` (a bug) becomes an `internal` error with its message instead of
 * crashing the call.
 */
export function strategy(impl) {
  const names = ['fields', 'verify', 'validate', 'create', 'update', 'delete', 'exists', 'getInfo', 'getById'];
  const json = new Set(['create', 'update', 'getInfo', 'getById']);
  const out = {};
  for (const name of names) {
    const f = impl[name] ?? optional[name];
    if (typeof f !== 'function') throw new Error(`a strategy needs ${name}()`);
    out[name] = (...args) => {
      try {
        const answer = f.apply(impl, args);
        return json.has(name) && typeof answer !== 'string' ? JSON.stringify(answer) : answer;
      } catch (e) {
        if (isStrategyError(e)) throw e;
        if (name === 'exists' || name === 'fields') throw e;
        throw errors.internal(`${name}: ${e && e.message ? e.message : e}`);
      }
    };
  }
  return out;
}
