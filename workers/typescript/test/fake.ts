// A fake Cerebelum server for the worker's tests: node:http, the four worker endpoints,
// each message the worker sends checked against docs/protocol.schema.json.
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import type { Task, TaskResult } from "../src/protocol.js";

const here = dirname(fileURLToPath(import.meta.url));
// dist-test/test/ -> the repository's docs/
const schema = JSON.parse(readFileSync(join(here, "..", "..", "..", "..", "docs", "protocol.schema.json"), "utf8"));

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Why `value` is not a `def` of the schema, or undefined when it is. */
export function invalid(def: string, value: Json): string | undefined {
  return check({ $ref: `#/$defs/${def}` }, value, "$");
}

function check(s: Json, v: Json, at: string): string | undefined {
  if (s.$ref) return check(schema.$defs[s.$ref.split("/").pop()], v, at);
  if (s.anyOf) {
    const why = s.anyOf.map((alt: Json) => check(alt, v, at));
    return why.includes(undefined) ? undefined : `${at}: none of anyOf: ${why.join("; ")}`;
  }
  const type = s.type;
  const got = v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
  if (type === "integer" && !Number.isInteger(v)) return `${at}: not an integer`;
  if (type === "number" && got !== "number") return `${at}: not a number`;
  if (["string", "boolean", "null", "array", "object"].includes(type) && got !== type) return `${at}: ${got}, not ${type}`;
  if (s.minimum !== undefined && v < s.minimum) return `${at}: below ${s.minimum}`;
  if (s.minLength !== undefined && v.length < s.minLength) return `${at}: too short`;
  if (s.minItems !== undefined && v.length < s.minItems) return `${at}: too few items`;
  if (s.enum && !s.enum.includes(v)) return `${at}: not one of ${s.enum}`;
  if (type === "array" && s.items) {
    for (let i = 0; i < v.length; i++) {
      const why = check(s.items, v[i], `${at}[${i}]`);
      if (why) return why;
    }
  }
  if (type === "object") {
    for (const key of s.required ?? []) if (!(key in v)) return `${at}: missing ${key}`;
    for (const [key, value] of Object.entries(v)) {
      const sub = s.properties?.[key];
      if (!sub) {
        if (s.additionalProperties === false) return `${at}: unknown field ${key}`;
        continue;
      }
      const why = check(sub, value, `${at}.${key}`);
      if (why) return why;
    }
  }
  return undefined;
}

export interface Seen {
  path: string;
  body: Json;
}

/** An answer a test makes the server give instead of its own: [status, body]. */
export type Override = (body: Json) => [number, Json] | undefined;

export class FakeServer {
  readonly seen: Seen[] = [];
  /** Tasks the next polls hand out. */
  readonly queue: Task[] = [];
  /** Tasks the next reports' answers hand out (up to their max_tasks). */
  readonly afterReport: Task[] = [];
  /** Every result reported, in order (re-sent ones again). */
  readonly reported: TaskResult[] = [];
  /** Task ids the next heartbeats answer as cancelled. */
  readonly cancelled = new Set<string>();
  /** Per path, an answer that replaces the server's own when it gives one. */
  readonly override = new Map<string, Override>();
  /** Messages that broke the schema. */
  readonly broken: string[] = [];
  /** Whether the worker is known (a restart forgets it). */
  known = new Set<string>();
  lease = 0.3;
  /** Acknowledge reported results (else answer with none acknowledged). */
  ack = true;
  port = 0;
  private server: Server | undefined;
  private wake: (() => void)[] = [];

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(port = 0): Promise<this> {
    const server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  /** Goes away: closes every connection, as a crashed server would. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    for (const wake of this.wake.splice(0)) wake();
  }

  /** Offers `task` to the next poll. */
  offer(...tasks: Task[]): void {
    this.queue.push(...tasks);
    for (const wake of this.wake.splice(0)) wake();
  }

  requests(path: string): Json[] {
    return this.seen.filter((s) => s.path === path).map((s) => s.body);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    const path = req.url ?? "";
    this.seen.push({ path, body });
    const send = (status: number, answer: Json) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(answer));
    };
    const def = { "/v1/worker/register": "Register", "/v1/worker/poll": "Poll", "/v1/worker/heartbeat": "Heartbeat", "/v1/worker/report": "Report" }[path];
    if (!def) return send(404, { error: { type: "NotFound", message: path } });
    const why = invalid(def, body);
    if (why) {
      this.broken.push(`${def}: ${why}`);
      return send(400, { error: { type: "ProtocolError", message: why } });
    }
    if (def === "Report") {
      for (const r of body.results) {
        if ([r.value !== undefined, r.error != null, r.commands != null].filter(Boolean).length !== 1) {
          this.broken.push(`TaskResult ${r.task_id}: not exactly one outcome`);
          return send(400, { error: { type: "ProtocolError", message: "one outcome" } });
        }
      }
    }
    const replaced = this.override.get(path)?.(body);
    if (replaced) return send(replaced[0], replaced[1]);
    if (def !== "Register" && !this.known.has(body.worker_id)) {
      return send(404, { error: { type: "UnknownWorkerError", message: `no worker ${body.worker_id}` } });
    }
    switch (def) {
      case "Register":
        this.known.add(body.worker_id);
        return send(200, { worker_id: body.worker_id, lease: this.lease, future_field: 1 });
      case "Poll": {
        let gone = false;
        res.on("close", () => (gone = true));
        const until = Date.now() + body.wait * 1000;
        while (this.queue.length === 0 && Date.now() < until && this.server) {
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, until - Date.now());
            this.wake.push(() => {
              clearTimeout(t);
              resolve();
            });
          });
        }
        if (gone || res.destroyed) return; // the worker cut it: nobody gets these
        return send(200, { tasks: this.queue.splice(0, body.max_tasks), unknown: "ignored" });
      }
      case "Heartbeat":
        return send(200, { cancelled: this.cancelled.has(body.task_id) });
      case "Report": {
        this.reported.push(...body.results);
        const acknowledged = this.ack ? body.results.map((r: TaskResult) => r.task_id) : [];
        return send(200, { acknowledged, tasks: this.afterReport.splice(0, body.max_tasks) });
      }
    }
  }
}

/** Resolves once `test()` is true; throws after `ms`. */
export async function until(test: () => unknown, ms = 3000, what = "the condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!test()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

let n = 0;
/** A task with sensible defaults. */
export function task(fields: Partial<Task> & Pick<Task, "kind" | "name">): Task {
  n++;
  return {
    task_id: `t-${n}`,
    execution_id: `e-${n}`,
    workflow: "order",
    queue: "default",
    attempt: 1,
    iteration: 0,
    idempotency_key: `e-${n}:${fields.name}`,
    inputs: fields.kind === "step" ? { inputs: {} } : { args: [], kwargs: {} },
    ...fields,
  };
}
