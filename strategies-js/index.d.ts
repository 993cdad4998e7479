// Types of the Sandgate author SDK for JavaScript (index.js): editors and TypeScript see what
// each host interface takes and answers. The contract itself is wit/strategy.wit.

/** A refusal the host turns into a Kuzzle error: throw it. */
export type StrategyError =
  | { tag: 'rejected'; val: string }
  | { tag: 'bad-request'; val: string }
  | { tag: 'conflict'; val: string }
  | { tag: 'not-found'; val: string }
  | { tag: 'internal'; val: string };

export declare const errors: {
  /** 401 plugin.strategy.missing_user */
  rejected(message: string): StrategyError;
  /** 400 plugin.strategy.bad_request */
  badRequest(message: string): StrategyError;
  /** 412 plugin.strategy.precondition */
  conflict(message: string): StrategyError;
  /** 404 plugin.strategy.not_found */
  notFound(message: string): StrategyError;
  /** 500 */
  internal(message: string): StrategyError;
};

/** What `verify` answers. */
export type Login =
  | { tag: 'user'; val: string }
  | { tag: 'redirect'; val: string }
  | { tag: 'provision'; val: { credentials: string; content: string } };

export declare const login: {
  user(kuid: string): Login;
  redirect(url: string): Login;
  provision(credentials: object, content?: object): Login;
};

/** A login as the host hands it to `verify`. */
export interface LoginRequest {
  /** The request body, a JSON object as text. */
  credentials: string;
  /** The request's arguments (query string, extra WebSocket keys). */
  query: [string, string][];
  clientIp: string | null;
  /** Stands for the browser across the steps of a multi-step login. */
  clientBinding: string;
}

export declare const storage: {
  get(key: string): string | null;
  set(key: string, value: string): void;
  setExpiring(key: string, value: string, ttlMs: number): void;
  delete(key: string): boolean;
  listKeys(prefix: string, limit?: number): string[];
  getJson<T = unknown>(key: string): T | null;
  setJson(key: string, value: unknown): void;
  setJsonExpiring(key: string, value: unknown, ttlMs: number): void;
  takeJson<T = unknown>(key: string): T | null;
};

export declare const crypto: {
  hashPassword(password: string): string;
  verifyPassword(password: string, phc: string): boolean;
  dummyHash(): string;
  sha256(bytes: Uint8Array): Uint8Array;
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
  hmacSha1(key: Uint8Array, data: Uint8Array): Uint8Array;
  hmacSha512(key: Uint8Array, data: Uint8Array): Uint8Array;
  randomBytes(length: number): Uint8Array;
  constantTimeEq(a: Uint8Array, b: Uint8Array): boolean;
  nowMs(): number;
  /** The payload text; throws `errors.rejected` if the token does not verify. */
  jwsVerify(token: string, jwks: string): string;
  hex(bytes: Uint8Array): string;
  utf8(text: string): Uint8Array;
};

export declare const log: Record<'trace' | 'debug' | 'info' | 'warn' | 'error', (message: string) => void>;

export declare const config: {
  text(): string;
  json<T = Record<string, unknown>>(): T;
};

export declare function parseCredentials(text: string): Record<string, unknown>;
export declare function queryArg(req: LoginRequest, name: string): string | null;

type Json = string | object;

/** Your strategy: `verify`, `create`, `update`, `delete`, `exists` are required. */
export interface Strategy {
  fields?(): string[];
  verify(req: LoginRequest): Login;
  validate?(kuid: string, credentials: string, isUpdate: boolean): void;
  create(kuid: string, credentials: string): Json;
  update(kuid: string, credentials: string): Json;
  delete(kuid: string): void;
  exists(kuid: string): boolean;
  getInfo?(kuid: string): Json;
  getById?(id: string): Json;
}

/** The `authenticator` export of your component. */
export declare function strategy(impl: Strategy): Record<string, (...args: unknown[]) => unknown>;
