// The worker against a fake server: what it sends, when, and what it keeps.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";

import { Worker, type Context, type WorkerOptions } from "../src/index.js";
import { FakeServer, task, until } from "./fake.js";

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function setup(options: Partial<WorkerOptions> = {}): Promise<{ server: FakeServer; worker: Worker }> {
  const server = await new FakeServer().start();
  const worker = new Worker({ server: server.url, logger: false, pollWait: 0.2, drainTimeout: 2, workerId: "w-1", ...options });
  cleanup.push(() => server.close());
  cleanup.push(() => worker.stop());
  return { server, worker };
}

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

test("register, poll, run a step with its inputs by name, report its value", async () => {
  const { server, worker } = await setup({ queues: ["default", "payments"], concurrency: 3 });
  let seen: Context | undefined;
  worker
    .step("order.charge", async (ctx, inputs) => {
      seen = ctx;
      return { charged: inputs.reserve.amount, order: ctx.inputs };
    })
    .activity("noop", () => null);
  const running = worker.run();
  const t = task({ kind: "step", name: "order.charge", inputs: { inputs: { order: "A-1" }, reserve: { amount: 120 } }, attempt: 2, iteration: 1 });
  server.offer(t);
  await until(() => server.reported.length === 1);
  const [reg] = server.requests("/v1/worker/register");
  assert.deepEqual(reg, { worker_id: "w-1", steps: ["order.charge"], activities: ["noop"], workflows: [], queues: ["default", "payments"], concurrency: 3 });
  const r = server.reported[0]!;
  assert.equal(r.task_id, t.task_id);
  assert.equal(r.attempt, 2);
  assert.ok(Math.abs(r.started_at! - Date.now() / 1000) < 5);
  assert.deepEqual(r.value, { charged: 120, order: { order: "A-1" } });
  assert.equal(seen?.step, "charge");
  assert.equal(seen?.name, "order.charge");
  assert.equal(seen?.kind, "step");
  assert.equal(seen?.executionId, t.execution_id);
  assert.equal(seen?.workflow, "order");
  assert.equal(seen?.attempt, 2);
  assert.equal(seen?.iteration, 1);
  assert.equal(seen?.idempotencyKey, t.idempotency_key);
  assert.equal(seen?.taskId, t.task_id);
  assert.equal(seen?.signal.aborted, false);
  const poll = server.requests("/v1/worker/poll")[0];
  assert.deepEqual(poll, { worker_id: "w-1", max_tasks: 3, wait: 0.2 });
  await worker.stop();
  await running;
  assert.deepEqual(server.broken, []);
});

test("outcomes: a thrown error, a returned {error, data}, {ok}, undefined, NaN", async () => {
  const { server, worker } = await setup();
  class Declined extends TypeError {}
  worker
    .step("o.throws", () => {
      throw new Declined("card declined", { cause: new Error("402") });
    })
    .step("o.returns_error", async () => ({ error: "payment_failed", data: { code: "funds" } }))
    .step("o.ok", async () => ({ ok: 5 }))
    .step("o.nothing", async () => {})
    .step("o.nan", async () => ({ price: NaN }));
  const running = worker.run();
  const names = ["o.throws", "o.returns_error", "o.ok", "o.nothing", "o.nan"];
  const tasks = names.map((name) => task({ kind: "step", name }));
  server.offer(...tasks);
  await until(() => server.reported.length === 5);
  const by = (i: number) => server.reported.find((r) => r.task_id === tasks[i]!.task_id)!;
  const thrown = by(0).error!;
  assert.equal(thrown.kind, "exception");
  assert.equal(thrown.name, "TypeError"); // Declined keeps TypeError's name
  assert.equal(thrown.type, "Declined");
  assert.deepEqual(thrown.bases, ["TypeError", "Error"]);
  assert.equal(thrown.message, "card declined");
  assert.match(thrown.traceback!, /card declined/);
  assert.equal(thrown.cause?.message, "402");
  assert.deepEqual(by(1).error, { kind: "error", name: "payment_failed", message: "payment_failed", data: { code: "funds" } });
  assert.equal(by(2).value, 5);
  assert.ok("value" in by(3));
  assert.equal(by(3).value, null);
  assert.equal(by(4).error?.kind, "unserialisable");
  assert.match(by(4).error!.message!, /NaN at \['price'\]/);
  await worker.stop();
  await running;
  assert.deepEqual(server.broken, []);
});

test("an activity gets its args, then its kwargs when there are some", async () => {
  const { server, worker } = await setup();
  const calls: unknown[][] = [];
  worker.activity("resize", async (ctx, ...args) => {
    calls.push(args);
    return { activity: ctx.activity, kind: ctx.kind };
  });
  const running = worker.run();
  server.offer(
    task({ kind: "activity", name: "resize", inputs: { args: ["a.png", 300], kwargs: {} } }),
    task({ kind: "activity", name: "resize", inputs: { args: ["b.png"], kwargs: { width: 10 } } }),
  );
  await until(() => server.reported.length === 2);
  assert.deepEqual(calls, [["a.png", 300], ["b.png", { width: 10 }]]);
  assert.deepEqual(server.reported[0]!.value, { activity: "resize", kind: "activity" });
  await worker.stop();
  await running;
});

test("start-to-close and heartbeat timeouts abort the signal and report a timeout", async () => {
  const { server, worker } = await setup();
  const aborted: string[] = [];
  const hang = (ctx: Context) =>
    new Promise((resolve) => {
      ctx.signal.addEventListener("abort", () => {
        aborted.push(ctx.taskId);
        resolve("late");
      });
    });
  worker.step("o.slow", hang).activity("silent", hang);
  worker.activity("beating", async (ctx) => {
    for (let i = 0; i < 8; i++) {
      await new Promise((r) => setTimeout(r, 30));
      ctx.heartbeat({ i });
    }
    return "done";
  });
  const running = worker.run();
  const slow = task({ kind: "step", name: "o.slow", start_to_close_timeout: 0.1 });
  const silent = task({ kind: "activity", name: "silent", heartbeat_timeout: 0.1, start_to_close_timeout: 5 });
  const beating = task({ kind: "activity", name: "beating", heartbeat_timeout: 0.15 });
  server.offer(slow, silent, beating);
  await until(() => server.reported.length === 3);
  const by = (id: string) => server.reported.find((r) => r.task_id === id)!;
  assert.equal(by(slow.task_id).error?.kind, "timeout");
  assert.equal(by(slow.task_id).error?.name, "StepTimeoutError");
  assert.equal(by(slow.task_id).error?.message, "step 'o.slow' did not finish within 0.1s");
  assert.equal(by(silent.task_id).error?.message, "activity 'silent' sent no heartbeat for 0.1s");
  assert.equal(by(beating.task_id).value, "done");
  assert.deepEqual(aborted.sort(), [slow.task_id, silent.task_id].sort());
  await worker.stop();
  await running;
});

test("heartbeats carry the details; cancelled aborts the attempt and nothing is reported", async () => {
  const { server, worker } = await setup();
  server.lease = 0.15; // a heartbeat every 50 ms
  let signal: AbortSignal | undefined;
  let seenDetails: unknown;
  worker.activity("long", (ctx) => {
    signal = ctx.signal;
    seenDetails = ctx.heartbeatDetails;
    ctx.heartbeat({ done: 0.5 });
    return new Promise(() => {}); // never ends by itself
  });
  const running = worker.run();
  const t = task({ kind: "activity", name: "long", heartbeat_details: { done: 0.2 } });
  server.offer(t);
  await until(() => server.requests("/v1/worker/heartbeat").length >= 2);
  const beat = server.requests("/v1/worker/heartbeat")[0];
  assert.deepEqual(beat, { worker_id: "w-1", task_id: t.task_id, attempt: 1, details: { done: 0.5 } });
  assert.deepEqual(seenDetails, { done: 0.2 });
  server.cancelled.add(t.task_id);
  await until(() => signal?.aborted);
  assert.equal((signal!.reason as Error).name, "CancelledError");
  await worker.stop();
  await running;
  assert.equal(server.reported.length, 0);
});

test("a result is kept and sent again until the server acknowledges it", async () => {
  const { server, worker } = await setup();
  let refusals = 0;
  server.override.set("/v1/worker/report", () => (refusals++ < 2 ? [503, { error: { type: "Unavailable", message: "busy" } }] : undefined));
  worker.step("o.a", () => "A");
  const running = worker.run();
  server.offer(task({ kind: "step", name: "o.a" }));
  await until(() => server.reported.length === 1);
  assert.equal(server.requests("/v1/worker/report").length, 3);
  // answered but not acknowledged: sent again (after a pause), until it is
  server.ack = false;
  const again = task({ kind: "step", name: "o.a" });
  server.offer(again);
  await until(() => server.reported.filter((r) => r.task_id === again.task_id).length >= 3);
  server.ack = true;
  await until(() => worker["results"].size === 0);
  const sent = server.reported.filter((r) => r.task_id === again.task_id).length;
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(server.reported.filter((r) => r.task_id === again.task_id).length, sent);
  await worker.stop();
  await running;
});

test("a server that forgot the worker (404 UnknownWorkerError) gets it registered again", async () => {
  const { server, worker } = await setup();
  worker.step("o.a", () => "A");
  const running = worker.run();
  await until(() => server.requests("/v1/worker/poll").length >= 1);
  server.known.clear(); // it restarted
  server.offer(task({ kind: "step", name: "o.a" }));
  await until(() => server.reported.length === 1);
  assert.equal(server.requests("/v1/worker/register").length, 2);
  // and a report refused so re-registers, then goes through
  server.known.clear();
  server.override.set("/v1/worker/poll", () => [200, { tasks: [] }]);
  server.override.set("/v1/worker/report", (body) =>
    server.known.has(body.worker_id) ? undefined : [404, { error: { type: "UnknownWorkerError", message: "who?" } }],
  );
  server.override.delete("/v1/worker/poll");
  server.offer(task({ kind: "step", name: "o.a" }));
  await until(() => server.reported.length === 2);
  await worker.stop();
  await running;
});

test("a server that is down, then up again: backoff, then everything goes on", async () => {
  const { server, worker } = await setup();
  worker.step("o.a", () => "A");
  const port = server.port;
  await server.close();
  const running = worker.run();
  await new Promise((r) => setTimeout(r, 300)); // a few tries: 50, 100, 200 ms
  await server.start(port);
  server.offer(task({ kind: "step", name: "o.a" }));
  await until(() => server.reported.length === 1, 5000);
  assert.throws(() => worker.step("o.b", () => 1), /while the worker runs/);
  await worker.stop();
  await running;
});

test("a result waiting through an outage is handed over when the server is back", async () => {
  const { server, worker } = await setup();
  const gate = deferred();
  worker.step("o.a", () => gate.promise.then(() => "A"));
  const running = worker.run();
  const t = task({ kind: "step", name: "o.a" });
  server.offer(t);
  await until(() => server.requests("/v1/worker/poll").length >= 2);
  const port = server.port;
  await server.close();
  gate.resolve();
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(server.reported.length, 0);
  await server.start(port);
  await until(() => server.reported.length === 1, 5000);
  assert.equal(server.reported[0]!.task_id, t.task_id);
  await worker.stop();
  await running;
});

test("a task offered again while it runs here is not run twice", async () => {
  const { server, worker } = await setup();
  const gate = deferred();
  let runs = 0;
  worker.step("o.a", async () => {
    runs++;
    await gate.promise;
    return runs;
  });
  const running = worker.run();
  const t = task({ kind: "step", name: "o.a" });
  server.offer(t);
  await until(() => runs === 1);
  server.offer({ ...t });
  await until(() => server.queue.length === 0);
  await new Promise((r) => setTimeout(r, 50));
  gate.resolve();
  await until(() => server.reported.length === 1);
  assert.equal(runs, 1);
  await worker.stop();
  await running;
  assert.equal(server.reported.length, 1);
});

test("tasks in a report's answer are run, and a full worker keeps them waiting", async () => {
  const { server, worker } = await setup({ concurrency: 1 });
  const order: string[] = [];
  worker.step("o.a", (ctx) => {
    order.push(ctx.taskId);
    return ctx.taskId;
  });
  const running = worker.run();
  const first = task({ kind: "step", name: "o.a" });
  const next = task({ kind: "step", name: "o.a" });
  server.afterReport.push(next);
  server.offer(first);
  await until(() => server.reported.length === 2);
  assert.deepEqual(order, [first.task_id, next.task_id]);
  const reports = server.requests("/v1/worker/report");
  assert.equal(reports[0].max_tasks, 1);
  await worker.stop();
  await running;
});

test("stop() lets a running task finish and hands its result over before run() resolves", async () => {
  const { server, worker } = await setup();
  const gate = deferred();
  let started = false;
  worker.step("o.a", async () => {
    started = true;
    await gate.promise;
    return "finished";
  });
  const running = worker.run();
  server.offer(task({ kind: "step", name: "o.a" }));
  await until(() => started);
  let resolved = false;
  void running.then(() => (resolved = true));
  const stopped = worker.stop();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(resolved, false);
  const polls = server.requests("/v1/worker/poll").length;
  gate.resolve();
  await stopped;
  await running;
  assert.equal(server.reported.length, 1);
  assert.equal(server.reported[0]!.value, "finished");
  assert.equal(server.requests("/v1/worker/poll").length, polls);
  assert.equal(server.requests("/v1/worker/report").at(-1).max_tasks, 0);
});

test("stop() past drainTimeout aborts what still runs", async () => {
  const { server, worker } = await setup({ drainTimeout: 0.1 });
  let signal: AbortSignal | undefined;
  worker.step("o.a", (ctx) => {
    signal = ctx.signal;
    return new Promise(() => {});
  });
  const running = worker.run();
  server.offer(task({ kind: "step", name: "o.a" }));
  await until(() => signal);
  const t0 = Date.now();
  await worker.stop();
  await running;
  assert.ok(Date.now() - t0 < 1000);
  assert.equal(signal!.aborted, true);
  assert.equal(server.reported.length, 0);
});

test("a refused token fails run() naming the server and the token", async () => {
  const { server, worker } = await setup({ token: "wrong" });
  server.override.set("/v1/worker/register", () => [401, { error: { type: "Unauthorized", message: "bad token" } }]);
  worker.step("o.a", () => 1);
  await assert.rejects(worker.run(), (err: Error) => err.message.includes(server.url) && /token/.test(err.message));
});

test("options and registrations are checked", async () => {
  assert.throws(() => new Worker({ server: "http://x", concurrency: 0 }), /concurrency/);
  assert.throws(() => new Worker({ server: "http://x", concurrency: 1.5 }), /concurrency/);
  assert.throws(() => new Worker({ server: "" }), /server/);
  const w = new Worker({ server: "http://x", queue: "q", logger: false });
  assert.deepEqual(w.queues, ["q"]);
  assert.match(w.id, /^.+:\d+:[0-9a-f]{6}$/);
  assert.throws(() => w.step("", () => 1), /name/);
  w.step("a.b", () => 1);
  assert.throws(() => w.activity("a.b", () => 1), /already/);
  await assert.rejects(new Worker({ server: "http://x", logger: false }).run(), /hosts nothing/);
});

test("the token goes as a bearer token", async () => {
  const server = await new FakeServer().start();
  cleanup.push(() => server.close());
  const { createServer } = await import("node:http");
  let auth: string | undefined;
  const probe = createServer((req, res) => {
    auth = req.headers.authorization;
    res.writeHead(401, { "content-type": "application/json" });
    res.end('{"error":{"type":"Unauthorized","message":"no"}}');
  });
  await new Promise<void>((r) => probe.listen(0, "127.0.0.1", () => r()));
  cleanup.push(() => {
    probe.closeAllConnections();
    return new Promise((r) => probe.close(r));
  });
  const port = (probe.address() as { port: number }).port;
  const w = new Worker({ server: `http://127.0.0.1:${port}/`, token: "s3cret", logger: false }).step("a.b", () => 1);
  await assert.rejects(w.run(), /token/);
  assert.equal(auth, "Bearer s3cret");
});

test("a report the server refuses for good is dropped, and the worker goes on", async () => {
  const { server, worker } = await setup();
  worker.step("o.a", (ctx) => ctx.taskId);
  server.override.set("/v1/worker/report", (body) =>
    body.results.some((r: { value?: unknown }) => r.value === "t-bad") ? [400, { error: { type: "ProtocolError", message: "no" } }] : undefined,
  );
  const running = worker.run();
  server.offer(task({ kind: "step", name: "o.a", task_id: "t-bad" }));
  await until(() => server.requests("/v1/worker/report").length === 1);
  server.offer(task({ kind: "step", name: "o.a", task_id: "t-good" }));
  await until(() => server.reported.length === 1);
  assert.equal(server.reported[0]!.task_id, "t-good");
  assert.equal(server.requests("/v1/worker/report").length, 2);
  await worker.stop();
  await running;
});

test("tasks waiting for a slot are heartbeaten, and dropped when cancelled; past drainTimeout they never start", async () => {
  const { server, worker } = await setup({ concurrency: 1, drainTimeout: 0.2 });
  server.lease = 0.15;
  const started: string[] = [];
  worker.step("o.a", (ctx) => {
    started.push(ctx.taskId);
    return new Promise(() => {});
  });
  const running = worker.run();
  const first = task({ kind: "step", name: "o.a" });
  const waiting = task({ kind: "step", name: "o.a" });
  const cancelled = task({ kind: "step", name: "o.a" });
  server.offer(first);
  await until(() => started.length === 1);
  // a full worker does not poll; a report's answer could still bring these
  worker["start"](waiting);
  worker["start"](cancelled);
  server.cancelled.add(cancelled.task_id);
  await until(() => server.requests("/v1/worker/heartbeat").some((b) => b.task_id === waiting.task_id));
  await until(() => worker["backlog"].length === 1);
  assert.equal(worker["backlog"][0].task.task_id, waiting.task_id);
  await worker.stop();
  await running;
  assert.deepEqual(started, [first.task_id]);
  assert.equal(server.reported.length, 0);
});

test("a heartbeat answered 404 UnknownWorkerError registers the worker again", async () => {
  const { server, worker } = await setup();
  server.lease = 0.15;
  const gate = deferred();
  worker.step("o.a", () => gate.promise.then(() => "A"));
  const running = worker.run();
  server.offer(task({ kind: "step", name: "o.a" }));
  await until(() => server.requests("/v1/worker/heartbeat").length >= 1);
  server.known.clear();
  await until(() => server.requests("/v1/worker/register").length >= 2);
  gate.resolve();
  await until(() => server.reported.length === 1);
  await worker.stop();
  await running;
});

test("a stopped worker can run again; stop() before it registered ends run() at once", async () => {
  const { server, worker } = await setup();
  worker.step("o.a", () => "A");
  let running = worker.run();
  server.offer(task({ kind: "step", name: "o.a" }));
  await until(() => server.reported.length === 1);
  await worker.stop();
  await running;
  running = worker.run();
  // (a task offered at once could go to the poll the stop cut, which the server may not
  // have seen go yet: the real server leases it to that poll too)
  await until(() => server.requests("/v1/worker/register").length === 2);
  await new Promise((r) => setTimeout(r, 20));
  server.offer(task({ kind: "step", name: "o.a" }));
  await until(() => server.reported.length === 2);
  await worker.stop();
  await running;

  const port = server.port;
  await server.close(); // nobody answers: it keeps trying to register
  const lonely = new Worker({ server: `http://127.0.0.1:${port}`, logger: false }).step("o.a", () => 1);
  const started = lonely.run();
  await new Promise((r) => setTimeout(r, 100));
  await lonely.stop();
  await started;
});
