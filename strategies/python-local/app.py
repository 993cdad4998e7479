"""The `local` strategy, in Python: a username and a password.

A port of strategies/local/src/lib.rs (the Rust `local` strategy) to Python, compiled to a
WebAssembly component with componentize-py (see build.sh). Same semantics:

- passwords are argon2id PHC strings computed by the host (`crypto.hash_password`); an
  unknown username still costs one `crypto.verify_password` against `crypto.dummy_hash()`,
  so response time does not tell whether a username exists;
- same storage layout (private to this strategy):
    `user:<username>` -> `{"kuid": ..., "hash": "<argon2id PHC>"}`
    `kuid:<kuid>`     -> `"<username>"` (the reverse index, for update/delete/getInfo)
  so a store written by one implementation is read by the other;
- same `strategy-error` cases and messages.

Known difference: the detail after "Invalid credentials: " (unparsable JSON) is Python's
json message, not serde_json's. The host only ever passes JSON objects it serialized
itself, so that branch is unreachable through the API.

Build:  ./build.sh   (needs `pip install componentize-py`)
Output: target/wasm32-wasip2/strategy/python_local.wasm (repo root)
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import crypto, storage
from wit_world.imports.types import (
    LoginRequest,
    StrategyError_BadRequest,
    StrategyError_Conflict,
    StrategyError_Internal,
    StrategyError_Rejected,
)

WRONG = "wrong username or password"


# ---- errors (raised as `Err(case)`, which componentize-py turns into `result::err`) ----

def rejected(msg):
    return Err(StrategyError_Rejected(msg))


def bad_request(msg):
    return Err(StrategyError_BadRequest(msg))


def conflict(msg):
    return Err(StrategyError_Conflict(msg))


def internal(msg):
    return Err(StrategyError_Internal(msg))


def no_credentials(kuid):
    return conflict(f'No credentials found for user "{kuid}".')


# ---- JSON, written as serde_json writes it (compact, non-ASCII kept) ----

def to_json(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def rust_debug(s):
    """`format!("{s:?}")` for a str, for the ASCII cases that matter in a key."""
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\0":
            out.append("\\0")
        elif ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F:
            out.append("\\u{%x}" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def object_of(credentials):
    """The credentials object; anything else is a 400."""
    try:
        value = json.loads(credentials)
    except (ValueError, RecursionError) as e:
        raise bad_request(f"Invalid credentials: {e}")
    if not isinstance(value, dict):
        raise bad_request("Credentials must be an object.")
    return value


def string_field(creds, name):
    """A field that must be a string when present (null counts as absent)."""
    value = creds.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        return value
    raise bad_request(f'"{name}" must be a string.')


# ---- storage ----

def user_key(username):
    return f"user:{username}"


def kuid_key(kuid):
    return f"kuid:{kuid}"


def get_json(key, check):
    """Reads and decodes a stored JSON value; one that no longer decodes is a 500."""
    text = storage.get(key)
    if text is None:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise internal(f"stored value {rust_debug(key)} is corrupt: {e}")
    problem = check(value)
    if problem:
        raise internal(f"stored value {rust_debug(key)} is corrupt: {problem}")
    return value


def set_json(key, value):
    """Encodes and writes a JSON value; a refused write (quota) is a 500."""
    try:
        storage.set(key, to_json(value))
    except Err as e:
        raise internal(e.value)


def _check_string(value):
    if not isinstance(value, str):
        return f"invalid type: {type(value).__name__}, expected a string"
    return None


def _check_account(value):
    if not isinstance(value, dict):
        return f"invalid type: {type(value).__name__}, expected struct Account"
    for field in ("kuid", "hash"):
        if field not in value:
            return f"missing field `{field}`"
        if not isinstance(value[field], str):
            return f"invalid type: {type(value[field]).__name__}, expected a string"
    return None


def username_of(kuid):
    return get_json(kuid_key(kuid), _check_string)


def account(username):
    return get_json(user_key(username), _check_account)


def ensure_free(username, kuid):
    """Fails when `username` already belongs to someone other than `kuid`."""
    existing = account(username)
    if existing is not None and existing["kuid"] != kuid:
        raise conflict(f'Login "{username}" is already used.')


def info(username, kuid):
    return to_json({"username": username, "kuid": kuid})


# ---- the export: `sandgate:strategy/authenticator` ----

class Authenticator(exports.Authenticator):
    def fields(self):
        return ["username", "password"]

    def verify(self, req: LoginRequest) -> str:
        # Like passport-local: credentials from the body, else from the query arguments.
        try:
            body = object_of(req.credentials)
        except Err:
            body = {}
        u, p = body.get("username"), body.get("password")
        if isinstance(u, str) and isinstance(p, str) and u and p:
            username, password = u, p
        else:
            def arg(name):
                return next((v for k, v in req.query if k == name), None)

            u, p = arg("username"), arg("password")
            if not (u and p):
                raise rejected("Missing credentials")
            username, password = u, p
        acc = account(username)
        if acc is None:
            # Pay for a hash anyway: unknown users must not answer faster.
            crypto.verify_password(password, crypto.dummy_hash())
            raise rejected(WRONG)
        if crypto.verify_password(password, acc["hash"]):
            return acc["kuid"]
        raise rejected(WRONG)

    def validate(self, kuid: str, credentials: str, is_update: bool) -> None:
        creds = object_of(credentials)
        if "kuid" in creds:
            raise bad_request("kuid cannot be specified in credentials.")
        username = string_field(creds, "username")
        password = string_field(creds, "password")
        if is_update:
            if username is None and password is None:
                raise bad_request("Missing username or password.")
        else:
            if not username:
                raise bad_request("Username required.")
            if password is None:
                raise bad_request("Password required.")
        if username == "":
            raise bad_request("Username required.")
        if password == "":
            raise bad_request("Password needed.")
        if username is not None:
            ensure_free(username, kuid)

    def create(self, kuid: str, credentials: str) -> str:
        self.validate(kuid, credentials, False)
        if username_of(kuid) is not None:
            raise conflict(f'A strategy already exists for user "{kuid}".')
        creds = object_of(credentials)
        username = string_field(creds, "username") or ""
        password = string_field(creds, "password") or ""
        hash_ = crypto.hash_password(password)
        set_json(user_key(username), {"kuid": kuid, "hash": hash_})
        set_json(kuid_key(kuid), username)
        return info(username, kuid)

    def update(self, kuid: str, credentials: str) -> str:
        self.validate(kuid, credentials, True)
        current = username_of(kuid)
        if current is None:
            raise no_credentials(kuid)
        creds = object_of(credentials)
        username = string_field(creds, "username")
        if username is None:
            username = current
        password = string_field(creds, "password")
        if password is not None:
            hash_ = crypto.hash_password(password)
        else:
            acc = account(current)
            if acc is None:
                raise no_credentials(kuid)
            hash_ = acc["hash"]
        if username != current:
            # A new login name is a new document; the old one goes (as the Kuzzle plugin does).
            storage.delete(user_key(current))
        set_json(user_key(username), {"kuid": kuid, "hash": hash_})
        set_json(kuid_key(kuid), username)
        return info(username, kuid)

    def delete(self, kuid: str) -> None:
        username = username_of(kuid)
        if username is None:
            raise no_credentials(kuid)
        storage.delete(user_key(username))
        storage.delete(kuid_key(kuid))

    def exists(self, kuid: str) -> bool:
        try:
            return username_of(kuid) is not None
        except Err:
            return False

    def get_info(self, kuid: str) -> str:
        username = username_of(kuid)
        if username is None:
            raise no_credentials(kuid)
        return info(username, kuid)

    def get_by_id(self, id: str) -> str:
        acc = account(id)
        if acc is None:
            raise conflict(f'No credentials found for username "{id}".')
        return info(id, acc["kuid"])
