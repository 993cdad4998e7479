/*
 * Sandgate driven by the OFFICIAL, unmodified kuzzle-sdk (pinned to 7.17.1 in package.json and
 * package-lock.json), over both of its transports: `Http` and `WebSocket` (one port, path "/").
 *
 * What this file proves, if it passes:
 *   - a stock Kuzzle 2 client can bootstrap Sandgate with its own methods:
 *     `security.createFirstAdmin(_id, body)` (anonymous, once) and `security.createUser(_id, body)` (admin);
 *   - for each transport, the whole login life cycle works as a Kuzzle user observes it:
 *       connect → auth.login('local', {username, password}, '1h') resolves a jwt the SDK decodes itself
 *       (kuzzle.authenticated true, userId = kuid, exp ≈ now + 1h) → auth.checkToken() says
 *       {valid: true, kuid} → auth.getCurrentUser() gives the _id and profileIds → auth.getStrategies()
 *       contains 'local' → auth.updateMyCredentials('local', {password: new}) → auth.logout() →
 *       the old token is refused: checkToken(old) = {valid: false, state: 'Invalid token.'}, and a request
 *       carrying the old jwt rejects with a KuzzleError {status: 401, id: 'security.token.invalid'}, after
 *       which the SDK runs its tokenExpired handling (it forgets the jwt) → the old password no longer logs
 *       in, the new one does → a failed login rejects with a KuzzleError {status: 401,
 *       id: 'plugin.strategy.missing_user'};
 *   - over WebSocket, no reply was discarded by the SDK (every reply carried `room` = requestId).
 *
 * The file starts Sandgate itself: the binary named by $SANDGATE_BIN (default ../target/debug/sandgate
 * relative to sdk-tests/), on a free 127.0.0.1 port, with a fresh temporary data directory, and always
 * kills it at the end. It fails loudly if the binary is missing. Every test has a timeout, and every
 * SDK request has one too, so a server that never answers gives a clear failure instead of a hang.
 *
 * Steps of one protocol depend on each other: after the first failing step, the later steps of that
 * protocol are reported as skipped, naming the step that failed.
 */
"use strict";

const { describe, it, after } = require("node:test");
const assert = require("node:assert/strict");
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");

const { Kuzzle, Http, WebSocket } = require("kuzzle-sdk");
// KuzzleError is not re-exported by the package entry point (and "exports" hides deep paths): load the
// very module file the SDK itself uses (same path, so the same class for `instanceof`).
const { KuzzleError } = require(path.join(path.dirname(require.resolve("kuzzle-sdk")), "src", "KuzzleError.js"));

const SDK_VERSION = require("kuzzle-sdk/package.json").version;
const HOST = "127.0.0.1";
const SDK_TESTS_DIR = path.resolve(__dirname, "..");
const SANDGATE_BIN = process.env.SANDGATE_BIN
  ? path.resolve(process.env.SANDGATE_BIN)
  : path.resolve(SDK_TESTS_DIR, "..", "target", "debug", "sandgate");

const STARTUP_TIMEOUT_MS = 60_000; // first start compiles the wasm strategies
const REQUEST_TIMEOUT_MS = 10_000; // every SDK call (see within())
const STEP_TIMEOUT_MS = 30_000; // every test

const ADMIN = { kuid: "sdk-admin", username: "sdk-admin", password: "admin-Pw-1" };
const USERS = {
  Http: { kuid: "sdk-user-http", username: "sdk-user-http", oldPassword: "old-Pw-http-1", newPassword: "new-Pw-http-2" },
  WebSocket: { kuid: "sdk-user-ws", username: "sdk-user-ws", oldPassword: "old-Pw-ws-1", newPassword: "new-Pw-ws-2" },
};

// ---------------------------------------------------------------------------------------------
// The server under test
// ---------------------------------------------------------------------------------------------

const server = { child: null, port: null, dataDir: null, log: "", exited: null, started: false };

function serverLogTail(lines = 40) {
  return server.log.split("\n").slice(-lines).join("\n");
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, HOST, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function startSandgate() {
  if (!fs.existsSync(SANDGATE_BIN)) {
    const msg =
      `Sandgate binary not found: ${SANDGATE_BIN}\n` +
      "Build it first (from the repository root: `make strategies && cargo build -p sandgate`), " +
      "or point SANDGATE_BIN at an existing binary.";
    console.error(`\n*** ${msg}\n`);
    throw new Error(msg);
  }
  fs.accessSync(SANDGATE_BIN, fs.constants.X_OK);

  server.port = await freePort();
  server.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sandgate-sdk-tests-"));
  // Default configuration (Kuzzle-format jwt tokens): an inherited SANDGATE_CONFIG is not passed on.
  const { SANDGATE_CONFIG: _ignored, ...inherited } = process.env;
  server.child = spawn(SANDGATE_BIN, ["serve"], {
    env: {
      ...inherited,
      SANDGATE_LISTEN: `${HOST}:${server.port}`,
      SANDGATE_DATA_DIR: server.dataDir,
      NO_COLOR: "1",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const collect = (chunk) => {
    server.log += chunk.toString();
  };
  server.child.stdout.on("data", collect);
  server.child.stderr.on("data", collect);
  server.child.on("exit", (code, signal) => {
    server.exited = { code, signal };
  });
  server.child.on("error", (err) => {
    server.exited = { code: null, signal: null, error: err };
  });

  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  let lastError = null;
  while (Date.now() < deadline) {
    if (server.exited) {
      throw new Error(
        `Sandgate exited during start-up (${JSON.stringify(server.exited)}); its output:\n${serverLogTail()}`,
      );
    }
    try {
      const res = await fetch(`http://${HOST}:${server.port}/_healthcheck`, {
        signal: AbortSignal.timeout(2000),
      });
      if (res.status === 200) return;
      lastError = `GET /_healthcheck answered ${res.status}`;
    } catch (err) {
      lastError = err.message;
    }
    await sleep(100);
  }
  throw new Error(
    `Sandgate did not answer 200 on GET /_healthcheck within ${STARTUP_TIMEOUT_MS} ms ` +
      `(last: ${lastError}); its output:\n${serverLogTail()}`,
  );
}

async function stopSandgate() {
  const child = server.child;
  if (child && !server.exited) {
    child.kill("SIGTERM");
    const deadline = Date.now() + 5000;
    while (!server.exited && Date.now() < deadline) await sleep(50);
    if (!server.exited) {
      child.kill("SIGKILL");
      while (!server.exited && Date.now() < deadline + 2000) await sleep(50);
    }
  }
  if (server.dataDir) {
    fs.rmSync(server.dataDir, { recursive: true, force: true });
    server.dataDir = null;
  }
}

// Last resort: never leave the server running, whatever happens to this process (including Ctrl-C).
function killSandgateNow() {
  if (server.child && !server.exited) {
    try {
      server.child.kill("SIGKILL");
    } catch {
      /* already gone */
    }
  }
}
process.on("exit", killSandgateNow);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    killSandgateNow();
    if (server.dataDir) fs.rmSync(server.dataDir, { recursive: true, force: true });
    process.kill(process.pid, signal);
  });
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

function newKuzzle(protocolName) {
  const protocol =
    protocolName === "Http"
      ? new Http(HOST, { port: server.port })
      : new WebSocket(HOST, { port: server.port, autoReconnect: false });
  // No SDK `requestTimeout`: kuzzle-sdk 7.17.1 never clears that timer (Kuzzle._timeoutRequest), which
  // keeps node alive for the full delay after the last request. `within()` bounds each call instead.
  return new Kuzzle(protocol, { autoResubscribe: false });
}

/** Bounds one SDK call: rejects with a clear message if the server never answers. */
function within(promise, what, ms = REQUEST_TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer from Sandgate within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The JWT payload, decoded independently of the SDK (base64url). */
function jwtPayload(jwt) {
  const part = jwt.split(".")[1];
  return JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
}

/** Resolves when `kuzzle` emits `event`, or rejects after `ms`. */
function waitForEvent(kuzzle, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the SDK did not emit "${event}" within ${ms} ms`)),
      ms,
    );
    kuzzle.addListener(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

/** Describes an error thrown by the SDK in full, for assertion messages. */
function describeError(err) {
  if (!err) return String(err);
  const o = { name: err.name, message: err.message };
  for (const k of ["status", "id", "code", "props"]) if (err[k] !== undefined) o[k] = err[k];
  return JSON.stringify(o);
}

/** Asserts that `promise` rejects with a KuzzleError of the given status and id. */
async function assertKuzzleRejects(promise, { status, id }, what) {
  let err = null;
  try {
    const value = await promise;
    assert.fail(`${what}: expected a rejection (${status} ${id}), but it resolved ${JSON.stringify(value)}`);
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    err = e;
  }
  assert.ok(err instanceof KuzzleError, `${what}: expected a KuzzleError, got ${describeError(err)}`);
  assert.equal(err.status, status, `${what}: status; error was ${describeError(err)}`);
  assert.equal(err.id, id, `${what}: id; error was ${describeError(err)}`);
  return err;
}

/**
 * A sequence of dependent steps: once one fails, the following ones are skipped and name it; all
 * are skipped while `prerequisite()` returns a reason. Each step gets a per-test timeout.
 */
function stepper(prerequisite = () => null) {
  let failed = null;
  return function step(name, fn, timeout = STEP_TIMEOUT_MS) {
    it(name, { timeout }, async (t) => {
      const missing = prerequisite();
      if (missing) {
        t.skip(`skipped: ${missing}`);
        return;
      }
      if (failed) {
        t.skip(`skipped: an earlier step failed ("${failed}")`);
        return;
      }
      try {
        await fn(t);
      } catch (err) {
        failed = name;
        if (server.exited) t.diagnostic(`Sandgate is no longer running: ${JSON.stringify(server.exited)}`);
        t.diagnostic(`Sandgate output (last lines):\n${serverLogTail(15)}`);
        throw err;
      }
    });
  };
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

describe(`Sandgate × official kuzzle-sdk ${SDK_VERSION}`, () => {
  const seeded = { admin: false, users: {} };

  // Starting the server is a test of its own (not a `before` hook, which node 20 reports as
  // "cancelled" for every test and "fail 0"): a missing binary is one loud failure, the rest skip.
  it(`start Sandgate (${SANDGATE_BIN})`, { timeout: STARTUP_TIMEOUT_MS + 10_000 }, async () => {
    await startSandgate();
    server.started = true;
  });
  after(stopSandgate, { timeout: 15_000 });

  describe("setup through the SDK (Http)", () => {
    let kuzzle = null;
    const step = stepper(() => (server.started ? null : "Sandgate did not start"));

    after(() => {
      if (kuzzle) kuzzle.disconnect();
    });

    step("connect", async () => {
      kuzzle = newKuzzle("Http");
      await within(kuzzle.connect(), "connect");
      assert.equal(kuzzle.connected, true, "kuzzle.connected after connect()");
    });

    step("security.createFirstAdmin(_id, {credentials: {local}}) as anonymous", async () => {
      const admin = await within(
        kuzzle.security.createFirstAdmin(ADMIN.kuid, {
          content: {},
          credentials: { local: { username: ADMIN.username, password: ADMIN.password } },
        }),
        "security.createFirstAdmin",
      );
      assert.equal(admin._id, ADMIN.kuid);
      assert.deepEqual(admin.profileIds, ["admin"]);
      seeded.admin = true;
    });

    step("the first admin logs in", async () => {
      const jwt = await within(
        kuzzle.auth.login("local", { username: ADMIN.username, password: ADMIN.password }, "1h"),
        "auth.login (admin)",
      );
      assert.equal(typeof jwt, "string");
      assert.equal(kuzzle.authenticated, true);
    });

    for (const [proto, user] of Object.entries(USERS)) {
      step(`security.createUser('${user.kuid}', {content: {profileIds: ['default']}, credentials}) as admin`, async () => {
        const created = await within(
          kuzzle.security.createUser(user.kuid, {
            content: { profileIds: ["default"] },
            credentials: { local: { username: user.username, password: user.oldPassword } },
          }),
          "security.createUser",
        );
        assert.equal(created._id, user.kuid);
        assert.deepEqual(created.profileIds, ["default"]);
        seeded.users[proto] = true;
      });
    }

    step("the admin logs out", async () => {
      await within(kuzzle.auth.logout(), "auth.logout");
      assert.equal(kuzzle.jwt, null);
    });
  });

  for (const proto of ["Http", "WebSocket"]) {
    describe(`${proto}: login life cycle`, () => {
      const user = USERS[proto];
      const step = stepper(() =>
        server.started
          ? seeded.users[proto]
            ? null
            : `user ${user.kuid} was not created (see the setup tests)`
          : "Sandgate did not start",
      );
      let kuzzle = null;
      let oldJwt = null;
      const discarded = [];
      const networkErrors = [];
      let lastLoginAt = 0;

      // Kuzzle's default limits.loginsPerSecond is 1 per *connection*; HTTP has a new connection per
      // request, a WebSocket keeps one. Space logins on the same WebSocket as a real client must.
      async function login(credentials, expiresIn) {
        if (proto === "WebSocket") {
          const wait = lastLoginAt + 1100 - Date.now();
          if (wait > 0) await sleep(wait);
          lastLoginAt = Date.now();
        }
        return within(kuzzle.auth.login("local", credentials, expiresIn), "auth.login");
      }

      after(() => {
        if (kuzzle) kuzzle.disconnect();
      });

      step(`new Kuzzle(new ${proto}('${HOST}', {port})).connect()`, async () => {
        kuzzle = newKuzzle(proto);
        kuzzle.addListener("discarded", (data) => discarded.push(data));
        kuzzle.addListener("networkError", (err) => networkErrors.push(err));
        await within(kuzzle.connect(), "connect");
        assert.equal(kuzzle.connected, true, "kuzzle.connected after connect()");
        assert.equal(kuzzle.authenticated, false, "no token yet");
        // The SDK checks the (absent) token on connect; the anonymous answer is valid, kuid "-1".
        const anon = await within(kuzzle.auth.checkToken(), "auth.checkToken");
        assert.equal(anon.valid, true, `anonymous checkToken: ${JSON.stringify(anon)}`);
        assert.equal(anon.kuid, "-1", `anonymous checkToken: ${JSON.stringify(anon)}`);
      });

      step("auth.login('local', {username, password}, '1h') resolves a jwt the SDK decodes", async () => {
        const before = Math.floor(Date.now() / 1000);
        const jwt = await login({ username: user.username, password: user.oldPassword }, "1h");
        assert.equal(typeof jwt, "string", "login resolves the jwt string");
        assert.equal(kuzzle.jwt, jwt, "kuzzle.jwt is the jwt login resolved");
        assert.equal(kuzzle.authenticated, true, "kuzzle.authenticated after login with expiresIn");
        // The SDK's own decoding (core/Jwt.js):
        const token = kuzzle.auth.authenticationToken;
        assert.equal(token.userId, user.kuid, "the SDK reads _id = kuid from the jwt");
        assert.equal(typeof token.expiresAt, "number", "the SDK reads exp from the jwt");
        assert.ok(
          Math.abs(token.expiresAt - (before + 3600)) <= 60,
          `exp should be about now + 1h: exp=${token.expiresAt}, now=${before}`,
        );
        assert.equal(token.expired, false);
        // And the same payload decoded strictly (base64url):
        const payload = jwtPayload(jwt);
        assert.equal(payload._id, user.kuid);
        assert.equal(payload.exp, token.expiresAt);
        oldJwt = jwt;
      });

      step("auth.checkToken() → {valid: true, kuid, expiresAt ≈ now + 1h}", async () => {
        const res = await within(kuzzle.auth.checkToken(), "auth.checkToken");
        assert.equal(res.valid, true, `checkToken: ${JSON.stringify(res)}`);
        assert.equal(res.kuid, user.kuid, `checkToken: ${JSON.stringify(res)}`);
        assert.equal(typeof res.expiresAt, "number", `checkToken: ${JSON.stringify(res)}`);
        assert.ok(
          Math.abs(res.expiresAt - (Date.now() + 3_600_000)) <= 60_000,
          `expiresAt should be about now + 1h (ms): ${res.expiresAt}`,
        );
        // With the token passed explicitly, the same answer:
        const res2 = await within(kuzzle.auth.checkToken(oldJwt), "auth.checkToken");
        assert.equal(res2.valid, true, `checkToken(jwt): ${JSON.stringify(res2)}`);
        assert.equal(res2.kuid, user.kuid, `checkToken(jwt): ${JSON.stringify(res2)}`);
      });

      step("auth.getCurrentUser() → _id and profileIds", async () => {
        const me = await within(kuzzle.auth.getCurrentUser(), "auth.getCurrentUser");
        assert.equal(me._id, user.kuid);
        assert.deepEqual(me.profileIds, ["default"]);
      });

      step("auth.getStrategies() contains 'local' (logged in)", async () => {
        const strategies = await within(kuzzle.auth.getStrategies(), "auth.getStrategies");
        assert.ok(Array.isArray(strategies), `getStrategies: ${JSON.stringify(strategies)}`);
        assert.ok(strategies.includes("local"), `getStrategies: ${JSON.stringify(strategies)}`);
      });

      step("auth.updateMyCredentials('local', {password: new})", async () => {
        const res = await within(
          kuzzle.auth.updateMyCredentials("local", { password: user.newPassword }),
          "auth.updateMyCredentials",
        );
        assert.equal(res.username, user.username, `updateMyCredentials: ${JSON.stringify(res)}`);
        assert.equal(res.kuid, user.kuid, `updateMyCredentials: ${JSON.stringify(res)}`);
        // Changing the password does not end the session.
        const check = await within(kuzzle.auth.checkToken(), "auth.checkToken");
        assert.equal(check.valid, true, `checkToken after the update: ${JSON.stringify(check)}`);
      });

      step("auth.logout()", async () => {
        await within(kuzzle.auth.logout(), "auth.logout");
        assert.equal(kuzzle.jwt, null, "the SDK drops its jwt on logout");
        assert.equal(kuzzle.authenticated, false);
      });

      step("the old token is refused: checkToken(old) → {valid: false, state: 'Invalid token.'}", async () => {
        const res = await within(kuzzle.auth.checkToken(oldJwt), "auth.checkToken");
        assert.equal(res.valid, false, `checkToken(old): ${JSON.stringify(res)}`);
        assert.equal(res.state, "Invalid token.", `checkToken(old): ${JSON.stringify(res)}`);
      });

      step(
        "a request carrying the old jwt rejects with 401 security.token.invalid and the SDK runs tokenExpired",
        async () => {
          // What a user sees when they reuse a stale token: `kuzzle.jwt = old` marks the SDK logged in;
          // the server rejects the request with security.token.invalid; the SDK rejects the promise with
          // that KuzzleError and emits "tokenExpired" (protocols/abstract/Base.js). Kuzzle.tokenExpired()
          // then tries to re-authenticate (checkToken(old) → valid false; no `authenticator` set, so it
          // emits "reconnectionError"), clears its jwt and emits the public "tokenExpired" event.
          kuzzle.jwt = oldJwt;
          const expired = waitForEvent(kuzzle, "tokenExpired");
          const reauth = waitForEvent(kuzzle, "reconnectionError");
          await assertKuzzleRejects(
            within(kuzzle.auth.getCurrentUser(), "auth.getCurrentUser"),
            { status: 401, id: "security.token.invalid" },
            "getCurrentUser with the revoked jwt",
          );
          const [reauthError] = await reauth;
          assert.match(String(reauthError && reauthError.error), /authenticator/);
          await expired;
          assert.equal(kuzzle.jwt, null, "the SDK forgot the invalid jwt");
          assert.equal(kuzzle.authenticated, false);
          // And without the jwt the SDK is anonymous again.
          const me = await within(kuzzle.auth.getCurrentUser(), "auth.getCurrentUser");
          assert.equal(me._id, "-1", "getCurrentUser as anonymous");
        },
      );

      step("the old password no longer logs in (401 plugin.strategy.missing_user)", async () => {
        await assertKuzzleRejects(
          login({ username: user.username, password: user.oldPassword }, "1h"),
          { status: 401, id: "plugin.strategy.missing_user" },
          "login with the old password",
        );
        assert.equal(kuzzle.authenticated, false);
      });

      step("the new password logs in (and the new session works)", async () => {
        const jwt = await login({ username: user.username, password: user.newPassword }, "1h");
        assert.equal(typeof jwt, "string");
        assert.notEqual(jwt, oldJwt, "a new token");
        assert.equal(kuzzle.authenticated, true);
        assert.equal(kuzzle.auth.authenticationToken.userId, user.kuid);
        const check = await within(kuzzle.auth.checkToken(), "auth.checkToken");
        assert.equal(check.valid, true, `checkToken: ${JSON.stringify(check)}`);
        assert.equal(check.kuid, user.kuid, `checkToken: ${JSON.stringify(check)}`);
        const me = await within(kuzzle.auth.getCurrentUser(), "auth.getCurrentUser");
        assert.equal(me._id, user.kuid);
        await within(kuzzle.auth.logout(), "auth.logout");
        assert.equal(kuzzle.jwt, null);
      });

      step("a failed login (unknown user) rejects with status 401, id 'plugin.strategy.missing_user'", async () => {
        const err = await assertKuzzleRejects(
          login({ username: `nobody-${proto}`, password: "whatever" }, "1h"),
          { status: 401, id: "plugin.strategy.missing_user" },
          "login of an unknown user",
        );
        assert.equal(typeof err.message, "string");
        assert.equal(kuzzle.authenticated, false);
      });

      step("no reply was discarded by the SDK and the connection stayed up", async () => {
        // Let the SDK's post-login checkToken (fired by the failed login) settle first.
        await sleep(300);
        assert.deepEqual(discarded, [], `discarded replies/requests: ${JSON.stringify(discarded)}`);
        assert.deepEqual(
          networkErrors.map((e) => describeError(e)),
          [],
          "network errors seen by the SDK",
        );
        assert.equal(kuzzle.connected, true, "still connected");
      });
    });
  }

  // Kuzzle's rights model through the SDK: an admin writes a role and a profile, a user holding
  // them is allowed and refused accordingly, checkRights and getMyRights say the same, an API
  // key works until deleted, a single-use token works once, and (WebSocket) an expiring token
  // makes the SDK emit tokenExpired on the server's notice.
  for (const proto of ["Http", "WebSocket"]) {
    describe(`${proto}: roles, profiles, API keys, tokens`, () => {
      const step = stepper(() =>
        server.started ? (seeded.admin ? null : "the first admin was not created") : "Sandgate did not start",
      );
      const kuid = `rights-${proto.toLowerCase()}`;
      let admin = null;
      let kuzzle = null;
      let apiKey = null;

      after(() => {
        for (const k of [admin, kuzzle]) if (k) k.disconnect();
      });

      step("the admin creates a role, a profile and a user holding it", async () => {
        admin = newKuzzle("Http");
        await within(admin.connect(), "connect");
        await within(admin.auth.login("local", { username: ADMIN.username, password: ADMIN.password }, "1h"), "login");
        const role = await within(
          admin.security.createRole(`role-${kuid}`, {
            controllers: {
              auth: { actions: { checkToken: true, getCurrentUser: true, getMyRights: true, logout: true,
                                 checkRights: true, createApiKey: true, deleteApiKey: true, createToken: true } },
              security: { actions: { getUser: true } },
            },
          }),
          "security.createRole",
        );
        assert.equal(role._id, `role-${kuid}`);
        const profile = await within(
          admin.security.createProfile(`profile-${kuid}`, { policies: [{ roleId: `role-${kuid}` }] }),
          "security.createProfile",
        );
        assert.equal(profile._id, `profile-${kuid}`);
        const user = await within(
          admin.security.createUser(kuid, {
            content: { profileIds: [`profile-${kuid}`] },
            credentials: { local: { username: kuid, password: "rights-Pw-1" } },
          }),
          "security.createUser",
        );
        assert.deepEqual(user.profileIds, [`profile-${kuid}`]);
      });

      step("the user is allowed what the role names and refused the rest", async () => {
        kuzzle = newKuzzle(proto);
        await within(kuzzle.connect(), "connect");
        await within(kuzzle.auth.login("local", { username: kuid, password: "rights-Pw-1" }, "1h"), "login");
        const other = await within(kuzzle.security.getUser(ADMIN.kuid), "security.getUser");
        assert.equal(other._id, ADMIN.kuid);
        await assertKuzzleRejects(
          within(kuzzle.security.createUser(`${kuid}-x`, { content: { profileIds: ["admin"] } }), "security.createUser"),
          { status: 403, id: "security.rights.forbidden" },
          "createUser by a user whose role does not name it",
        );
        await assertKuzzleRejects(
          within(kuzzle.auth.updateSelf({ profileIds: ["admin"] }), "auth.updateSelf"),
          { status: 403, id: "security.rights.forbidden" },
          "updateSelf is not in the role",
        );
      });

      step("auth.checkRights and auth.getMyRights agree with the role", async () => {
        assert.equal(await within(kuzzle.auth.checkRights({ controller: "security", action: "getUser" }), "checkRights"), true);
        assert.equal(await within(kuzzle.auth.checkRights({ controller: "security", action: "createUser" }), "checkRights"), false);
        const rights = await within(kuzzle.auth.getMyRights(), "auth.getMyRights");
        const getUser = rights.find((r) => r.controller === "security" && r.action === "getUser");
        assert.deepEqual(getUser, { controller: "security", action: "getUser", index: "*", collection: "*", value: "allowed" });
        assert.ok(!rights.some((r) => r.action === "createUser"), JSON.stringify(rights));
      });

      step("auth.createApiKey: a kapikey- token that authenticates", async () => {
        const key = await within(kuzzle.auth.createApiKey(`${proto} key`), "auth.createApiKey");
        assert.match(key._source.token, /^kapikey-/);
        assert.equal(key._source.userId, kuid);
        assert.equal(key._source.expiresAt, -1);
        apiKey = key;
        const byKey = newKuzzle(proto);
        try {
          await within(byKey.connect(), "connect");
          byKey.setAPIKey(key._source.token);
          const me = await within(byKey.auth.getCurrentUser(), "getCurrentUser with the API key");
          assert.equal(me._id, kuid);
        } finally {
          byKey.disconnect();
        }
      });

      step("auth.deleteApiKey: the key is refused from then on", async () => {
        await within(kuzzle.auth.deleteApiKey(apiKey._id), "auth.deleteApiKey");
        const byKey = newKuzzle(proto);
        try {
          await within(byKey.connect(), "connect");
          byKey.setAPIKey(apiKey._source.token);
          await assertKuzzleRejects(
            within(byKey.security.getUser(ADMIN.kuid), "getUser with the deleted key"),
            { status: 401, id: "security.token.invalid" },
            "a deleted API key",
          );
        } finally {
          byKey.disconnect();
        }
      });

      step("auth:createToken with singleUse works once", async () => {
        const { result } = await within(
          kuzzle.query({ controller: "auth", action: "createToken", singleUse: true }),
          "auth:createToken",
        );
        assert.equal(result.singleUse, true);
        const once = newKuzzle(proto);
        try {
          await within(once.connect(), "connect");
          once.jwt = result.token;
          const me = await within(once.security.getUser(kuid), "first use");
          assert.equal(me._id, kuid);
          once.jwt = result.token;
          await assertKuzzleRejects(
            within(once.security.getUser(kuid), "second use"),
            { status: 401, id: "security.token.invalid" },
            "a single-use token used twice",
          );
        } finally {
          once.disconnect();
        }
      });

      if (proto === "WebSocket") {
        step("a token expiring on a WebSocket: the server notifies and the SDK emits tokenExpired", async () => {
          const short = newKuzzle("WebSocket");
          try {
            await within(short.connect(), "connect");
            await within(short.auth.login("local", { username: kuid, password: "rights-Pw-1" }, "2s"), "login 2s");
            const expired = waitForEvent(short, "tokenExpired", 10_000);
            await expired;
            assert.equal(short.jwt, null, "the SDK dropped its token");
          } finally {
            short.disconnect();
          }
        });
      }
    });
  }

});
