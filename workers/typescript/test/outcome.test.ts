// What a handler's outcome becomes on the wire.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { encodeOutcome, errorInfo, isErrorResult } from "../src/outcome.js";

const base = { task_id: "t-1", attempt: 1, started_at: 1.5 };

class BillingError extends Error {}
class PaymentDeclined extends BillingError {
  override name = "PaymentDeclined";
}

test("a thrown Error: name, type, bases, message, stack and its causes", () => {
  const root = new TypeError("socket hang up");
  const err = new PaymentDeclined("card 4242 declined", { cause: root });
  const info = errorInfo(err);
  assert.equal(info.kind, "exception");
  assert.equal(info.name, "PaymentDeclined");
  assert.equal(info.type, "PaymentDeclined");
  assert.deepEqual(info.bases, ["BillingError", "Error"]);
  assert.equal(info.message, "card 4242 declined");
  assert.match(info.traceback!, /PaymentDeclined: card 4242 declined\n\s+at /);
  assert.equal(info.cause?.name, "TypeError");
  assert.deepEqual(info.cause?.bases, ["Error"]);
  assert.equal(info.cause?.message, "socket hang up");
  assert.equal(info.cause?.cause, undefined);
});

test("causes stop at 8 and at a cycle; a thrown non-Error is an Error named by its text", () => {
  let err = new Error("0");
  for (let i = 1; i <= 12; i++) err = new Error(String(i), { cause: err });
  let depth = 0;
  for (let info = errorInfo(err).cause; info; info = info.cause) depth++;
  assert.equal(depth, 8);

  const a = new Error("a");
  const b = new Error("b", { cause: a });
  (a as { cause?: unknown }).cause = b;
  const cyc = errorInfo(a);
  assert.equal(cyc.cause?.message, "b");
  assert.equal(cyc.cause?.cause, undefined);

  assert.deepEqual(errorInfo("boom"), { kind: "exception", name: "Error", message: "boom" });
  assert.equal(errorInfo({ code: 7 }).message, '{"code":7}');
  assert.equal(errorInfo(new Error("x", { cause: "why" })).cause?.message, "why");
});

test("{error, data} is a returned error; {ok: v} is v; undefined is null", () => {
  const out = JSON.parse(encodeOutcome(base, { error: "payment_failed", data: { code: "funds" } }, "step 's'"));
  assert.deepEqual(out, { ...base, error: { kind: "error", name: "payment_failed", message: "payment_failed", data: { code: "funds" } } });
  const msg = JSON.parse(encodeOutcome(base, { error: "late", message: "too late" }, "step 's'"));
  assert.equal(msg.error.message, "too late");
  assert.equal(msg.error.data, undefined);
  assert.deepEqual(JSON.parse(encodeOutcome(base, { ok: { a: 1 } }, "step 's'")), { ...base, value: { a: 1 } });
  assert.deepEqual(JSON.parse(encodeOutcome(base, { ok: undefined }, "step 's'")), { ...base, value: null });
  const none = encodeOutcome(base, undefined, "step 's'");
  assert.match(none, /"value":null/);
  // not an error's shape: a value
  assert.equal(isErrorResult({ error: "x", other: 1 }), false);
  assert.equal(isErrorResult({ error: 3 }), false);
  assert.deepEqual(JSON.parse(encodeOutcome(base, { error: "x", extra: 1 }, "s")).value, { error: "x", extra: 1 });
});

test("what JSON cannot hold is refused as unserialisable, with where it is", () => {
  const nan = JSON.parse(encodeOutcome(base, { items: [{ price: NaN }] }, "step 'order.charge'"));
  assert.equal(nan.error.kind, "unserialisable");
  assert.equal(nan.error.name, "SerializationError");
  assert.match(nan.error.message, /step 'order\.charge'/);
  assert.match(nan.error.message, /NaN at \['items'\]\[0\]\['price'\]/);
  const inf = JSON.parse(encodeOutcome(base, Infinity, "activity 'a'"));
  assert.match(inf.error.message, /Infinity at the top/);
  const big = JSON.parse(encodeOutcome(base, { n: 10n }, "activity 'a'"));
  assert.equal(big.error.kind, "unserialisable");
  assert.match(big.error.message, /activity 'a'.*BigInt/);
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  assert.equal(JSON.parse(encodeOutcome(base, circular, "s")).error.kind, "unserialisable");
  assert.equal(JSON.parse(encodeOutcome(base, new Map(), "s")).error.kind, "unserialisable");
  const badData = JSON.parse(encodeOutcome(base, { error: "e", data: NaN }, "s"));
  assert.equal(badData.error.kind, "unserialisable");
  // a Date goes as its toJSON
  assert.equal(JSON.parse(encodeOutcome(base, new Date(0), "s")).value, "1970-01-01T00:00:00.000Z");
});

test("src/protocol.ts matches docs/protocol.schema.json (npm run check-types)", () => {
  const pkg = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
  const run = spawnSync(process.execPath, [join(pkg, "scripts", "generate-types.mjs"), "--check"], { encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
});
