// How an attempt's outcome becomes what a TaskResult carries: a JSON value, or an
// ErrorInfo that Python's diverge rules route by its names.
import type { ErrorInfo, TaskResult } from "./protocol.js";

/** How many causes of an error are kept, as the Python worker does. */
export const MAX_CAUSES = 8;

/** A returned error (Python's `Error("payment_failed", data)`), routed by its name. */
export interface ErrorResult {
  error: string;
  data?: unknown;
  message?: string;
}

/** Python's qualified names for a timeout, so that rules route it as a Python one's. */
const STEP_TIMEOUT = {
  name: "StepTimeoutError",
  type: "cerebelum.errors.StepTimeoutError",
  bases: [
    "cerebelum.errors.CerebelumError",
    "builtins.TimeoutError",
    "builtins.OSError",
    "builtins.Exception",
    "builtins.BaseException",
    "builtins.object",
  ],
};

const ERROR_KEYS = new Set(["error", "data", "message"]);

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** `{ error: "name", data?, message? }`: a returned error rather than a value. */
export function isErrorResult(value: unknown): value is ErrorResult {
  if (!isPlainObject(value)) return false;
  if (typeof value.error !== "string" || value.error === "") return false;
  for (const key in value) if (!ERROR_KEYS.has(key)) return false;
  return value.message === undefined || typeof value.message === "string";
}

/** `{ ok: value }`, the other half of a result type: the value itself. */
function isOkResult(value: unknown): value is { ok: unknown } {
  if (!isPlainObject(value)) return false;
  let keys = 0;
  for (const key in value) {
    if (key !== "ok") return false;
    keys++;
  }
  return keys === 1;
}

/** Text the server can always store: a lone surrogate would not be valid UTF-8. */
function text(s: string): string {
  return s.isWellFormed() ? s : s.toWellFormed();
}

function pathOf(path: (string | number)[]): string {
  return path.map((p) => (typeof p === "number" ? `[${p}]` : `[${JSON.stringify(p).replace(/^"|"$/g, "'")}]`)).join("");
}

/**
 * What JSON.stringify would silently change in `value` (NaN and the infinities become
 * null, a Map or a Set becomes {}), or undefined when it encodes as it is. BigInt and
 * cycles make JSON.stringify throw, so they are found before this is asked.
 */
function changedByJson(value: unknown, path: (string | number)[]): string | undefined {
  if (value === null) return undefined;
  switch (typeof value) {
    case "number":
      return Number.isFinite(value) ? undefined : `${value} at ${pathOf(path) || "the top"}`;
    case "object": {
      const withJson = value as { toJSON?: (key: string) => unknown };
      if (typeof withJson.toJSON === "function") {
        return changedByJson(withJson.toJSON(String(path[path.length - 1] ?? "")), path);
      }
      if (value instanceof Map || value instanceof Set) {
        return `a ${value.constructor.name} at ${pathOf(path) || "the top"} (JSON has none: use an object or an array)`;
      }
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const found = changedByJson(value[i], [...path, i]);
          if (found !== undefined) return found;
        }
        return undefined;
      }
      for (const key of Object.keys(value)) {
        const found = changedByJson((value as Record<string, unknown>)[key], [...path, key]);
        if (found !== undefined) return found;
      }
      return undefined;
    }
    default:
      return undefined;
  }
}

/** `value` as JSON text, or why it cannot be (the text names `what` and the place). */
export function encodeValue(value: unknown, what: string): { json: string } | { why: string } {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    return { why: `${what} cannot be encoded as JSON: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (json === undefined) {
    return { why: `${what} cannot be encoded as JSON: it is a ${typeof value}` };
  }
  const changed = changedByJson(value, []);
  if (changed !== undefined) return { why: `${what} is not JSON: ${changed}` };
  return { json };
}

/** An ErrorInfo for a result that cannot be stored (never retried). */
export function unserialisable(message: string): ErrorInfo {
  return { kind: "unserialisable", name: "SerializationError", message: text(message) };
}

/** An ErrorInfo for an attempt that ran out of time. */
export function timeoutError(message: string): ErrorInfo {
  return { kind: "timeout", ...STEP_TIMEOUT, bases: [...STEP_TIMEOUT.bases], message };
}

/** The names of the classes `ctor` extends, nearest first, up to (without) Object. */
function basesOf(err: object): string[] {
  const bases: string[] = [];
  let proto = Object.getPrototypeOf(Object.getPrototypeOf(err));
  while (proto !== null && proto !== Object.prototype && bases.length < 32) {
    const name = proto.constructor?.name;
    if (typeof name === "string" && name !== "") bases.push(name);
    proto = Object.getPrototypeOf(proto);
  }
  return bases;
}

function oneError(thrown: unknown, kind: string): ErrorInfo {
  if (thrown instanceof Error) {
    const ctorName = (thrown.constructor as { name?: unknown } | undefined)?.name;
    const type = typeof ctorName === "string" && ctorName !== "" ? ctorName : String(thrown.name || "Error");
    const name = typeof thrown.name === "string" && thrown.name !== "" ? thrown.name : type;
    return {
      kind,
      name: text(name),
      type: text(type),
      bases: basesOf(thrown),
      message: text(String(thrown.message ?? "") || name),
      traceback: text(typeof thrown.stack === "string" ? thrown.stack : ""),
    };
  }
  let message: string;
  if (isPlainObject(thrown) || Array.isArray(thrown)) {
    try {
      message = JSON.stringify(thrown) ?? String(thrown);
    } catch {
      message = String(thrown);
    }
  } else {
    message = String(thrown);
  }
  return { kind, name: "Error", message: text(message || "Error") };
}

/** A thrown value as an ErrorInfo, with its causes (`err.cause`), at most 8 deep. */
export function errorInfo(thrown: unknown, kind = "exception"): ErrorInfo {
  const top = oneError(thrown, kind);
  const seen = new Set<unknown>([thrown]);
  let link = top;
  let current = thrown;
  for (let depth = 0; depth < MAX_CAUSES; depth++) {
    if (!(current instanceof Error) || current.cause === undefined || current.cause === null) break;
    const next = current.cause;
    if (seen.has(next)) break;
    seen.add(next);
    link.cause = oneError(next, "exception");
    link = link.cause;
    current = next;
  }
  return top;
}

/** A TaskResult as the JSON the server reads; `valueJson` is its value, already encoded. */
export function encodeResult(result: TaskResult, valueJson?: string): string {
  const json = JSON.stringify(result);
  return valueJson === undefined ? json : `${json.slice(0, -1)},"value":${valueJson}}`;
}

/**
 * The TaskResult of a handler that returned `returned`, encoded as JSON.
 * `what` names the step or activity in messages ("step 'order.charge'").
 */
export function encodeOutcome(
  base: { task_id: string; attempt: number; started_at: number },
  returned: unknown,
  what: string,
): string {
  if (isErrorResult(returned)) {
    const error: ErrorInfo = {
      kind: "error",
      name: text(returned.error),
      message: text(returned.message || returned.error),
    };
    if (returned.data !== undefined) {
      const data = encodeValue(returned.data, `the data of the error returned by ${what}`);
      if ("why" in data) return encodeResult({ ...base, error: unserialisable(data.why) });
      error.data = returned.data;
    }
    return encodeResult({ ...base, error });
  }
  const value = isOkResult(returned) ? returned.ok : returned;
  const encoded = encodeValue(value === undefined ? null : value, `the result of ${what}`);
  if ("why" in encoded) return encodeResult({ ...base, error: unserialisable(encoded.why) });
  return encodeResult(base, encoded.json);
}
