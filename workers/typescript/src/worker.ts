// The worker: runs the steps and activities a Cerebelum server hands out.
//
// It is built to be killed and restarted at any moment, as the Python worker is:
// - it heartbeats every task it holds, a third of the server's lease apart, so that a
//   task it still runs is never offered to another worker, and one it held when it died
//   is offered again (same attempt, same idempotency key) once the lease runs out;
// - a result is kept until the server acknowledges it: when the server is away, the
//   worker sends it again with backoff, and registers again when the server has
//   forgotten it (a restart);
// - stop() stops taking tasks, lets the ones it holds finish and hands their results
//   over before run() resolves.
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { performance } from "node:perf_hooks";

import {
  Client,
  CutError,
  FIRST_BACKOFF_MS,
  MAX_BACKOFF_MS,
  Notifier,
  RefusedError,
  retryable,
  sleep,
} from "./http.js";
import { attempt, held as newHeld, type Held, type Waiting } from "./attempt.js";
import type {
  Heartbeat,
  HeartbeatResponse,
  Poll,
  PollResponse,
  Register,
  Registered,
  Report,
  ReportResponse,
  Task,
} from "./protocol.js";
import type { ActivityHandler, Logger, RunOptions, StepHandler, WorkerOptions } from "./types.js";
import { consoleLogger, silentLogger } from "./log.js";

function seconds(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !(value >= 0) || !Number.isFinite(value)) {
    throw new TypeError(`${name} is a number of seconds >= 0, not ${String(value)}`);
  }
  return value;
}

export class Worker {
  readonly server: string;
  readonly queues: string[];
  readonly concurrency: number;
  readonly id: string;
  readonly pollWait: number;
  readonly drainTimeout: number;
  /** Seconds a held task stays this worker's without a heartbeat, as the server says. */
  lease = 30;

  private readonly log: Logger;
  private readonly client: Client;
  private readonly steps = new Map<string, StepHandler>();
  private readonly activities = new Map<string, ActivityHandler>();

  private readonly running = new Map<string, Held>();
  private backlog: Waiting[] = [];
  /** Results not acknowledged yet, by task id, each as the JSON of its TaskResult. */
  private readonly results = new Map<string, string>();
  private readonly resultsChanged = new Notifier();
  private readonly finished = new Notifier();

  private active = false;
  private stopping = false;
  /** Aborted by stop(): cuts the long poll. */
  private stopCtl = new AbortController();
  /** Aborted drainTimeout after stop(). */
  private drainCtl = new AbortController();
  /** Aborted when run() ends: ends the sender and the heartbeats. */
  private closeCtl = new AbortController();
  private drainTimer: ReturnType<typeof setTimeout> | undefined;
  private registering: Promise<void> | undefined;
  private done: Promise<void> = Promise.resolve();

  constructor(options: WorkerOptions) {
    if (!options || typeof options.server !== "string" || options.server === "") {
      throw new TypeError("the server's URL is required: new Worker({ server: 'http://127.0.0.1:8080' })");
    }
    const concurrency = options.concurrency ?? 10;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new TypeError(`concurrency is a whole number >= 1, not ${String(concurrency)}`);
    }
    this.server = options.server.replace(/\/+$/, "");
    const queues = options.queues ?? (options.queue !== undefined ? [options.queue] : ["default"]);
    if (queues.length === 0 || queues.some((q) => typeof q !== "string" || q === "")) {
      throw new TypeError("queues are one or more non-empty names");
    }
    this.queues = [...queues];
    this.concurrency = concurrency;
    this.id = options.workerId || `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`;
    this.pollWait = Math.min(seconds(options.pollWait, "pollWait", 10), 60);
    this.drainTimeout = seconds(options.drainTimeout, "drainTimeout", 60);
    this.log = options.logger === false ? silentLogger : (options.logger ?? consoleLogger);
    const token = options.token !== undefined ? options.token : process.env.CEREBELUM_WORKER_TOKEN;
    this.client = new Client(this.server, token || undefined);
  }

  /** Host step `name` (a step's task name is `workflow.step`, such as `order.charge`). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  step<I = any>(name: string, handler: StepHandler<I>): this {
    this.add("step", name, handler);
    this.steps.set(name, handler as StepHandler);
    return this;
  }

  /** Host activity `name`. */
  activity(name: string, handler: ActivityHandler): this {
    this.add("activity", name, handler);
    this.activities.set(name, handler);
    return this;
  }

  private add(kind: string, name: string, handler: unknown): void {
    if (typeof name !== "string" || name === "") throw new TypeError(`a ${kind} needs a name`);
    if (typeof handler !== "function") throw new TypeError(`the ${kind} '${name}' needs a function`);
    if (this.steps.has(name) || this.activities.has(name)) {
      throw new Error(`'${name}' is already registered on this worker`);
    }
    if (this.active) throw new Error(`cannot add the ${kind} '${name}' while the worker runs`);
  }

  /** What it registers: step task names and activity names. */
  get hosts(): { steps: string[]; activities: string[] } {
    return { steps: [...this.steps.keys()].sort(), activities: [...this.activities.keys()].sort() };
  }

  /**
   * Stop taking tasks; the promise (and run()'s) resolves once those held are done and
   * their results handed over, or drainTimeout seconds have passed.
   */
  stop(): Promise<void> {
    const done = this.done.catch(() => {}); // run() says how it failed
    if (!this.active || this.stopping) return done;
    this.stopping = true;
    this.log.info(`worker ${this.id}: stopping: finishing what it holds`);
    this.drainTimer = setTimeout(() => this.drainCtl.abort(), this.drainTimeout * 1000);
    this.stopCtl.abort();
    this.finished.notify();
    return done;
  }

  /** Register, then take and run tasks until stop(). */
  run(options: RunOptions = {}): Promise<void> {
    if (this.active) return Promise.reject(new Error("this worker is running already"));
    if (this.steps.size === 0 && this.activities.size === 0) {
      return Promise.reject(new Error("this worker hosts nothing: add steps or activities before run()"));
    }
    this.active = true;
    this.stopping = false;
    this.stopCtl = new AbortController();
    this.drainCtl = new AbortController();
    this.closeCtl = new AbortController();
    const remove = options.handleSignals ? this.handleSignals() : () => {};
    this.done = this.runs().finally(() => {
      remove();
      clearTimeout(this.drainTimer);
      this.client.close();
      this.active = false;
    });
    return this.done;
  }

  private handleSignals(): () => void {
    const onSignal = (signal: NodeJS.Signals) => {
      if (this.stopping) {
        // a second one: as if nobody listened
        remove();
        process.kill(process.pid, signal);
        return;
      }
      this.log.info(`worker ${this.id}: ${signal} (again to quit at once)`);
      void this.stop();
    };
    const remove = () => {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    return remove;
  }

  private async runs(): Promise<void> {
    try {
      await this.register();
    } catch (err) {
      if (err instanceof CutError) return; // stopped before it could register
      if (err instanceof RefusedError && (err.status === 401 || err.status === 403)) {
        throw new Error(
          `the server at ${this.server} refused this worker's token (${err.status} ${err.type}: ${err.reason}): ` +
            "give the server's worker token (the token option or $CEREBELUM_WORKER_TOKEN)",
        );
      }
      throw err;
    }
    const helpers = [this.sender(), this.heartbeats()];
    try {
      await this.take();
      await this.drain();
    } finally {
      this.closeCtl.abort();
      await Promise.allSettled(helpers);
    }
    this.log.info(`worker ${this.id} stopped`);
  }

  private async drain(): Promise<void> {
    const deadline = this.drainCtl.signal;
    while ((this.running.size > 0 || this.backlog.length > 0) && !deadline.aborted) {
      this.log.info(`worker ${this.id}: finishing ${this.running.size + this.backlog.length} tasks`);
      await this.finished.wait(deadline);
    }
    if (deadline.aborted && (this.running.size > 0 || this.backlog.length > 0)) {
      const ids = [...this.running.keys(), ...this.backlog.map((w) => w.task.task_id)];
      this.log.warn(
        `worker ${this.id}: stopping with tasks ${ids.join(", ")} unfinished after ${this.drainTimeout}s: ` +
          "they are offered again when their leases run out",
      );
      this.backlog = []; // first: a dropped task's slot must not start one of these
      for (const held of [...this.running.values()]) this.drop(held, "the worker is stopping");
    }
    while (this.results.size > 0 && !deadline.aborted) await this.resultsChanged.wait(deadline);
    if (this.results.size > 0) {
      this.log.warn(
        `worker ${this.id}: stopping with ${this.results.size} results the server did not take ` +
          `(${[...this.results.keys()].join(", ")}): their tasks are offered again when their leases run out`,
      );
    }
  }

  // --- talking to the server --------------------------------------------------------

  private post<T>(path: string, message: object, timeoutMs: number, cut: AbortSignal): Promise<T> {
    return this.client.call<T>(path, JSON.stringify(message), timeoutMs, cut);
  }

  /** `call()` until the server answers; with backoff while it is away. */
  private async patiently<T>(what: string, call: () => Promise<T>, cut: AbortSignal): Promise<T> {
    let delay = FIRST_BACKOFF_MS;
    for (;;) {
      try {
        const answer = await call();
        if (delay > FIRST_BACKOFF_MS) this.log.warn(`worker ${this.id}: the server at ${this.server} answers again`);
        return answer;
      } catch (err) {
        if (!retryable(err)) throw err;
        const say = `worker ${this.id}: ${what}: the server at ${this.server} does not answer (${(err as Error).message}); trying again, up to ${MAX_BACKOFF_MS / 1000}s apart`;
        if (delay === FIRST_BACKOFF_MS) this.log.warn(say);
        else this.log.debug?.(say);
        await sleep(delay, cut);
        delay = Math.min(delay * 2, MAX_BACKOFF_MS);
      }
    }
  }

  /** Register (again); concurrent callers share one registration. */
  private register(): Promise<void> {
    this.registering ??= this.registers().finally(() => {
      this.registering = undefined;
    });
    return this.registering;
  }

  private async registers(): Promise<void> {
    const { steps, activities } = this.hosts;
    const reg: Register = {
      worker_id: this.id,
      steps,
      activities,
      workflows: [],
      queues: this.queues,
      concurrency: this.concurrency,
    };
    const cut = this.stopping ? this.closeCtl.signal : AbortSignal.any([this.stopCtl.signal, this.closeCtl.signal]);
    const answer = await this.patiently(
      "registering",
      () => this.post<Registered>("/v1/worker/register", reg, 30_000, cut),
      cut,
    );
    if (typeof answer.lease === "number" && answer.lease > 0) this.lease = answer.lease;
    this.log.info(
      `worker ${this.id} registered with ${this.server} (${steps.length} steps, ${activities.length} activities)`,
    );
  }

  // --- taking tasks -----------------------------------------------------------------

  private async take(): Promise<void> {
    const cut = this.stopCtl.signal;
    while (!this.stopping) {
      const room = this.concurrency - this.running.size - this.backlog.length;
      if (room <= 0) {
        await this.finished.wait(cut);
        continue;
      }
      const ask: Poll = { worker_id: this.id, max_tasks: room, wait: this.pollWait };
      let answer: PollResponse;
      try {
        answer = await this.patiently(
          "polling",
          () => this.post<PollResponse>("/v1/worker/poll", ask, (this.pollWait + 10) * 1000, cut),
          cut,
        );
      } catch (err) {
        if (err instanceof CutError) break; // stopping: what a cut poll held is offered again later
        if (err instanceof RefusedError && err.forgotten) {
          try {
            await this.register();
          } catch (again) {
            if (again instanceof CutError) break;
            throw again;
          }
          continue;
        }
        throw err;
      }
      for (const task of answer.tasks ?? []) this.start(task);
    }
  }

  private start(task: Task): void {
    const id = task.task_id;
    if (this.running.has(id) || this.results.has(id) || this.backlog.some((w) => w.task.task_id === id)) {
      return; // offered again while it runs here, or before its result got through
    }
    if (this.running.size >= this.concurrency) {
      this.backlog.push({ task, since: performance.now() }); // a report's answer brought more
      return;
    }
    const held = newHeld(task);
    this.running.set(id, held);
    const handler = task.kind === "step" ? this.steps.get(task.name) : task.kind === "activity" ? this.activities.get(task.name) : undefined;
    attempt(held, handler, (result) => {
      if (!held.settled) this.settle(held, result);
    });
  }

  /** The attempt ended with `result` (a TaskResult's JSON): free its slot, keep the result. */
  private settle(held: Held, result: string): void {
    this.release(held);
    this.results.set(held.task.task_id, result);
    this.resultsChanged.notify();
  }

  /** The attempt is no longer wanted: abort it and forget it, with no result. */
  private drop(held: Held, why: string): void {
    if (held.settled) return;
    held.ctl.abort(Object.assign(new Error(why), { name: "CancelledError" }));
    this.release(held);
  }

  private release(held: Held): void {
    held.settled = true;
    if (held.timer !== undefined) clearTimeout(held.timer);
    held.timer = undefined;
    this.running.delete(held.task.task_id);
    const next = this.backlog.shift();
    if (next !== undefined) this.start(next.task);
    this.finished.notify();
  }

  // --- heartbeats and results ---------------------------------------------------------

  /** Heartbeat each task held longer than a third of the lease, a third apart. */
  private async heartbeats(): Promise<void> {
    const cut = this.closeCtl.signal;
    while (!cut.aborted) {
      try {
        await sleep((this.lease / 3) * 1000, cut);
      } catch {
        return;
      }
      const due = performance.now() - (this.lease / 3) * 1000;
      const beats: Promise<void>[] = [];
      for (const held of this.running.values()) if (held.since <= due) beats.push(this.beat(held, undefined));
      for (const waiting of this.backlog) if (waiting.since <= due) beats.push(this.beat(undefined, waiting));
      await Promise.all(beats);
    }
  }

  private async beat(held: Held | undefined, waiting: Waiting | undefined): Promise<void> {
    const task = (held ?? waiting)!.task;
    const beat: Heartbeat = { worker_id: this.id, task_id: task.task_id, attempt: task.attempt ?? 1 };
    if (held !== undefined && held.details !== undefined) beat.details = held.details;
    let answer: HeartbeatResponse;
    try {
      // no longer than till the next round: a late answer is worth no more than the next one
      const timeout = Math.max(1000, (this.lease / 3) * 1000);
      answer = await this.post<HeartbeatResponse>("/v1/worker/heartbeat", beat, timeout, this.closeCtl.signal);
    } catch (err) {
      if (err instanceof RefusedError && err.forgotten) {
        await this.register().catch(() => {});
      } else if (!(err instanceof CutError)) {
        this.log.debug?.(`worker ${this.id}: heartbeat of ${task.task_id} failed: ${(err as Error).message}`);
      }
      return;
    }
    if (!answer.cancelled) return;
    this.log.info(`worker ${this.id}: task ${task.task_id} is no longer wanted: stopping it`);
    if (held !== undefined) this.drop(held, `the server no longer wants task ${task.task_id}`);
    else this.backlog = this.backlog.filter((w) => w !== waiting);
  }

  /** Hand the results over, many at once; keep each until it is acknowledged. */
  private async sender(): Promise<void> {
    const cut = this.closeCtl.signal;
    let delay = FIRST_BACKOFF_MS;
    const backoff = async () => {
      await sleep(delay, cut);
      delay = Math.min(delay * 2, MAX_BACKOFF_MS);
    };
    while (!cut.aborted) {
      try {
        if (this.results.size === 0) {
          await this.resultsChanged.wait(cut);
          continue;
        }
        const ids = [...this.results.keys()];
        const batch = [...this.results.values()];
        // each result frees a slot: take as many tasks back in the answer
        const free = Math.max(0, this.concurrency - this.running.size - this.backlog.length);
        const room = this.stopping ? 0 : Math.min(free, batch.length);
        let answer: ReportResponse;
        try {
          answer = await this.client.call<ReportResponse>("/v1/worker/report", encodeReport(this.id, batch, room), 30_000, cut);
        } catch (err) {
          if (err instanceof CutError) return;
          if (retryable(err)) {
            this.log.warn(
              `worker ${this.id}: cannot hand ${batch.length} results to ${this.server} (${(err as Error).message}); trying again in ${delay / 1000}s`,
            );
            await backoff();
            continue;
          }
          if (err instanceof RefusedError && err.forgotten) {
            await this.register();
            continue;
          }
          // the server will never take these: keeping them would block the rest
          this.log.error(`worker ${this.id}: the server refused results ${ids.join(", ")}: ${(err as Error).message}`);
          for (const id of ids) this.results.delete(id);
          this.resultsChanged.notify();
          continue;
        }
        let taken = 0;
        for (const id of answer.acknowledged ?? []) if (this.results.delete(id)) taken++;
        for (const task of answer.tasks ?? []) this.start(task);
        this.resultsChanged.notify();
        if (taken > 0) delay = FIRST_BACKOFF_MS;
        else await backoff(); // none taken: do not send them again at once
      } catch (err) {
        if (err instanceof CutError || cut.aborted) return;
        // registering again was refused: say so and go on trying
        this.log.error(`worker ${this.id}: ${(err as Error).message}`);
        await backoff().catch(() => {});
      }
    }
  }
}

/** A Report's JSON, its results already encoded. */
function encodeReport(workerId: string, results: string[], maxTasks: number): string {
  const head: Omit<Report, "results"> = { worker_id: workerId, max_tasks: maxTasks };
  return `${JSON.stringify(head).slice(0, -1)},"results":[${results.join(",")}]}`;
}
