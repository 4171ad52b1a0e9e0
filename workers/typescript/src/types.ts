// What users of the worker see: its options, the context of an attempt, the handlers.

/** Where the worker says what it does. Each method takes one line of text. */
export interface Logger {
  debug?(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface WorkerOptions {
  /** The server's URL, such as `http://127.0.0.1:8080`. */
  server: string;
  /** The queue it takes tasks from (or use `queues`). */
  queue?: string;
  /** The queues it takes tasks from; default `["default"]`. */
  queues?: string[];
  /** The server's worker token; default `$CEREBELUM_WORKER_TOKEN`. */
  token?: string;
  /** How many tasks it runs at once, a whole number >= 1; default 10. */
  concurrency?: number;
  /** Its id; default `host:pid:random`. */
  workerId?: string;
  /** Seconds one poll waits for a task before asking again; default 10. */
  pollWait?: number;
  /**
   * Once stopped, seconds it goes on finishing the tasks it holds and handing their
   * results to the server; default 60. Past it, running handlers are aborted
   * (`ctx.signal`) and what is left is offered again by the server once its lease runs out.
   */
  drainTimeout?: number;
  /** Where it logs; default the console. `false` logs nothing. */
  logger?: Logger | false;
}

export interface RunOptions {
  /** Call stop() on the first SIGTERM or SIGINT; a second one ends the process as usual. */
  handleSignals?: boolean;
}

/** The attempt a handler runs: who it is, and how to tell the server it is alive. */
export interface Context {
  /** "step" or "activity". */
  readonly kind: "step" | "activity";
  /** The task's name as registered (a step's is `workflow.step`). */
  readonly name: string;
  /** For a step: its name within its workflow (`charge` of `order.charge`). */
  readonly step?: string;
  /** For an activity: its name. */
  readonly activity?: string;
  readonly executionId: string;
  /** The execution's workflow. */
  readonly workflow: string;
  /** The attempt's number, from 1. */
  readonly attempt: number;
  /** For a step: how many times a `back_to` loop has come back to it. */
  readonly iteration: number;
  /** The same on every attempt of this step or activity: for exactly-once effects. */
  readonly idempotencyKey: string;
  readonly queue: string;
  readonly taskId: string;
  /** The details the previous attempt's last heartbeat sent, if any. */
  readonly heartbeatDetails: unknown;
  /**
   * The W3C trace context of the execution's span, when the server traces: start the
   * attempt's span with it as parent to join the execution's trace.
   */
  readonly traceparent?: string;
  /** For a step: the workflow's input. */
  readonly inputs?: unknown;
  /**
   * Aborted when the attempt is no longer wanted (the server cancelled it), when it ran
   * out of time, or when the worker stops past its drain timeout.
   */
  readonly signal: AbortSignal;
  /**
   * It is alive: `details` (any JSON) go with the next heartbeat and reach the next
   * attempt if this one fails; also resets the activity's heartbeat timeout.
   */
  heartbeat(details?: unknown): void;
}

/** A returned error, routed by Python's diverge rules on `error` (its name). */
export interface ReturnedError {
  error: string;
  data?: unknown;
  message?: string;
}

/** A step: its parameters by name, `inputs` (the workflow's) and each dependency's result. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type StepHandler<I = any> = (ctx: Context, inputs: I) => unknown;

/** An activity: the call's positional arguments, then its keyword arguments if any. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ActivityHandler = (ctx: Context, ...args: any[]) => unknown;
