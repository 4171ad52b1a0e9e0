// One attempt of a step or an activity: its context, its handler, its clock.
import { performance } from "node:perf_hooks";

import { encodeOutcome, encodeResult, errorInfo, timeoutError } from "./outcome.js";
import type { Task } from "./protocol.js";
import type { ActivityHandler, Context, StepHandler } from "./types.js";

/** A task this worker runs now. */
export interface Held {
  readonly task: Task;
  readonly ctl: AbortController;
  /** When it was taken (performance.now() ms): heartbeats start a third of a lease later. */
  readonly since: number;
  /** When the attempt began (epoch seconds), for its result. */
  readonly startedAt: number;
  /** Details for the next heartbeat: the last ctx.heartbeat()'s, first the last attempt's. */
  details: unknown;
  /** When ctx.heartbeat() was last called (ms), for the activity's heartbeat timeout. */
  lastBeat: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Its outcome is known (or it was dropped): whatever the handler does later is ignored. */
  settled: boolean;
}

/** A task leased to this worker that waits for a free slot. */
export interface Waiting {
  readonly task: Task;
  readonly since: number;
}

/** A new attempt of `task`, taken now. */
export function held(task: Task): Held {
  const now = performance.now();
  return {
    task,
    ctl: new AbortController(),
    since: now,
    startedAt: Date.now() / 1000,
    details: task.heartbeat_details,
    lastBeat: now,
    timer: undefined,
    settled: false,
  };
}

/**
 * Run `handler` for the attempt `held`, under its timeouts; `settle` gets the outcome
 * as a TaskResult's JSON (at most once that counts: the caller ignores it once the
 * attempt is settled or dropped).
 */
export function attempt(held: Held, handler: StepHandler | ActivityHandler | undefined, settle: (result: string) => void): void {
  const task = held.task;
  const base = { task_id: task.task_id, attempt: task.attempt ?? 1, started_at: held.startedAt };
  const kind = task.kind;
  const workflow = task.workflow ?? "";
  const prefix = `${workflow}.`;
  const short = kind === "step" && workflow && task.name.startsWith(prefix) ? task.name.slice(prefix.length) : task.name;
  const what = `${kind} '${short}'`;
  if (handler === undefined) {
    const err = new Error(`this worker does not host ${kind} '${task.name}'`);
    err.name = "CerebelumError";
    settle(encodeResult({ ...base, error: errorInfo(err) }));
    return;
  }
  const inputs = (task.inputs ?? {}) as Record<string, unknown>;
  const ctx: Context = {
    kind: kind as "step" | "activity",
    name: task.name,
    executionId: task.execution_id,
    workflow,
    attempt: base.attempt,
    iteration: task.iteration ?? 0,
    idempotencyKey: task.idempotency_key ?? "",
    queue: task.queue ?? "default",
    taskId: task.task_id,
    heartbeatDetails: task.heartbeat_details,
    ...(task.traceparent ? { traceparent: task.traceparent } : {}),
    signal: held.ctl.signal,
    heartbeat(details?: unknown) {
      if (details !== undefined) held.details = details;
      held.lastBeat = performance.now();
    },
  };
  let args: unknown[];
  if (kind === "step") {
    (ctx as { step?: string }).step = short;
    (ctx as { inputs?: unknown }).inputs = inputs.inputs;
    args = [inputs];
  } else {
    (ctx as { activity?: string }).activity = task.name;
    args = Array.isArray(inputs.args) ? [...inputs.args] : [];
    const kwargs = inputs.kwargs;
    if (kwargs !== null && typeof kwargs === "object" && Object.keys(kwargs).length > 0) args.push(kwargs);
  }
  arm(held, what, settle);
  let result: unknown;
  try {
    result = (handler as (ctx: Context, ...args: unknown[]) => unknown)(ctx, ...args);
  } catch (err) {
    settle(encodeResult({ ...base, error: errorInfo(err) }));
    return;
  }
  if (result instanceof Promise || (result !== null && typeof (result as PromiseLike<unknown>)?.then === "function")) {
    Promise.resolve(result).then(
      (value) => {
        if (!held.settled) settle(encodeOutcome(base, value, what));
      },
      (err: unknown) => {
        if (!held.settled) settle(encodeResult({ ...base, error: errorInfo(err) }));
      },
    );
  } else {
    settle(encodeOutcome(base, result, what));
  }
}

/** Start the attempt's clock: its start-to-close timeout and its heartbeat timeout. */
function arm(held: Held, what: string, settle: (result: string) => void): void {
  const task = held.task;
  const limit = task.start_to_close_timeout ?? undefined;
  const beats = task.kind === "activity" ? (task.heartbeat_timeout ?? undefined) : undefined;
  if (limit === undefined && beats === undefined) return;
  const closeAt = limit !== undefined ? held.since + limit * 1000 : Infinity;
  const check = () => {
    held.timer = undefined;
    if (held.settled) return;
    const now = performance.now();
    let why: string | undefined;
    if (now >= closeAt) why = `${what} did not finish within ${limit}s`;
    else if (beats !== undefined && now - held.lastBeat >= beats * 1000) why = `${what} sent no heartbeat for ${beats}s`;
    if (why !== undefined) {
      const base = { task_id: task.task_id, attempt: task.attempt ?? 1, started_at: held.startedAt };
      held.ctl.abort(Object.assign(new Error(why), { name: "StepTimeoutError" }));
      settle(encodeResult({ ...base, error: timeoutError(why) }));
      return;
    }
    const next = Math.min(closeAt, beats !== undefined ? held.lastBeat + beats * 1000 : Infinity);
    held.timer = setTimeout(check, Math.max(1, next - now));
  };
  const first = Math.min(closeAt, beats !== undefined ? held.since + beats * 1000 : Infinity);
  held.timer = setTimeout(check, Math.max(1, first - held.since));
}
