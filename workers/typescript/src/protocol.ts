/* eslint-disable */
// The messages of the Cerebelum task protocol.
// generated from docs/protocol.schema.json by npm run generate; do not edit

/**
 * What a code workflow's activation asks for; tagged by `type`.
 */
export type Command =
  | ScheduleActivity
  | StartTimer
  | RequestApproval
  | AwaitSignal
  | StartChild
  | RecordMarker
  | ApplyPatch
  | CompleteWorkflow
  | FailWorkflow
  | ReportNonDeterminism;
/**
 * What a task runs.
 */
export type TaskKind = "activity" | "step" | "workflow";

/**
 * The task protocol between an engine and its workers: typed messages, encoded as JSON.
 */
export interface ProtocolMessages {
  ApplyPatch: ApplyPatch;
  AwaitSignal: AwaitSignal;
  Command: Command;
  CompleteWorkflow: CompleteWorkflow;
  ErrorInfo: ErrorInfo;
  FailWorkflow: FailWorkflow;
  Heartbeat: Heartbeat;
  HeartbeatResponse: HeartbeatResponse;
  Poll: Poll;
  PollResponse: PollResponse;
  RecordMarker: RecordMarker;
  Register: Register;
  Registered: Registered;
  Report: Report;
  ReportNonDeterminism: ReportNonDeterminism;
  ReportResponse: ReportResponse;
  RequestApproval: RequestApproval;
  RetryPolicy: RetryPolicy;
  ScheduleActivity: ScheduleActivity;
  StartChild: StartChild;
  StartTimer: StartTimer;
  Task: Task;
  TaskKind: TaskKind;
  TaskResult: TaskResult;
}
/**
 * Take the new path of ``patched(name)`` from here on; the engine records ``PatchApplied``.
 */
export interface ApplyPatch {
  /**
   * The patch's name.
   */
  name: string;
  type: "ApplyPatch";
}
/**
 * Wait for a signal (``await signal(name)``); the engine records ``SignalAwaited``.
 *
 * A signal that arrived before is handed over at once (``SignalDelivered``).
 */
export interface AwaitSignal {
  /**
   * The signal's name.
   */
  name: string;
  /**
   * The command's place in the workflow's program order, from 0.
   */
  position: number;
  /**
   * Seconds before it times out; none waits.
   */
  timeout?: number | null;
  type: "AwaitSignal";
}
/**
 * Run an activity (``await activity(fn, ...)``); the engine records ``ActivityScheduled``.
 */
export interface ScheduleActivity {
  /**
   * The activity's name, as workers host it.
   */
  activity: string;
  /**
   * The call: `{"args": [...], "kwargs": {...}}`.
   */
  args?: unknown;
  /**
   * Seconds an attempt may go without a heartbeat.
   */
  heartbeat_timeout?: number | null;
  /**
   * The command's place in the workflow's program order, from 0.
   */
  position: number;
  /**
   * The queue its tasks go to; empty for the workflow's own.
   */
  queue?: string;
  /**
   * Its retry policy; none runs it once.
   */
  retry?: RetryPolicy | null;
  /**
   * Seconds one attempt may take, from when a worker starts it.
   */
  start_to_close_timeout?: number | null;
  type: "ScheduleActivity";
}
/**
 * How an activity is retried; the engine decides retries from it (``Retry.to_spec()``).
 */
export interface RetryPolicy {
  /**
   * Each delay is the last one times this.
   */
  backoff?: number;
  /**
   * Seconds before the second attempt.
   */
  initial?: number;
  /**
   * Attempts in all, the first included.
   */
  max_attempts?: number;
  /**
   * The longest delay, in seconds; none: no limit.
   */
  max_interval?: number | null;
  /**
   * Error names (see ErrorInfo.names) that end the retries at once.
   */
  non_retryable?: string[];
}
/**
 * Sleep (``await sleep(...)``); the engine records ``TimerStarted`` at its own clock's time.
 */
export interface StartTimer {
  /**
   * The command's place in the workflow's program order, from 0.
   */
  position: number;
  /**
   * How long, from when the engine records it.
   */
  seconds: number;
  type: "StartTimer";
}
/**
 * Wait for an approval (``await approval(name)``); the engine records ``ApprovalRequested``.
 */
export interface RequestApproval {
  /**
   * The approval's name, as `approve`/`reject` address it.
   */
  name: string;
  /**
   * The command's place in the workflow's program order, from 0.
   */
  position: number;
  /**
   * Seconds before it times out; none waits.
   */
  timeout?: number | null;
  type: "RequestApproval";
}
/**
 * Start a child execution (``await child(wf, ...)``); the engine records ``ChildStarted``.
 *
 * Its id is the parent's id and the position (``parent.3``), so starting it again is
 * the same child.
 */
export interface StartChild {
  /**
   * The call: `{"args": [...], "kwargs": {...}}`.
   */
  args?: unknown;
  /**
   * The command's place in the workflow's program order, from 0.
   */
  position: number;
  type: "StartChild";
  /**
   * The child's workflow name.
   */
  workflow: string;
}
/**
 * Record a value the workflow made (``now()``, ``uuid4()``, ``random()``).
 *
 * The engine records ``MarkerRecorded``; a rebuilt coroutine reads it back from there.
 */
export interface RecordMarker {
  /**
   * What the value is: `now`, `uuid4`, `random`.
   */
  kind: string;
  /**
   * The command's place in the workflow's program order, from 0.
   */
  position: number;
  type: "RecordMarker";
  /**
   * The value, as JSON.
   */
  value?: unknown;
}
/**
 * The workflow returned; the engine records ``ExecutionCompleted``.
 */
export interface CompleteWorkflow {
  /**
   * What it returned, as JSON.
   */
  output?: unknown;
  type: "CompleteWorkflow";
}
/**
 * The workflow raised; the engine records ``ExecutionFailed``.
 */
export interface FailWorkflow {
  error: ErrorInfo;
  type: "FailWorkflow";
}
/**
 * How an attempt failed, as data: it crosses processes and languages.
 *
 * Diverge rules route a failure by the strings recorded here, never by a live class
 * (a worker in another language has none to give). A rule ``on="payment_failed"``
 * (a name) matches when that name is one of :meth:`names`: ``name``, the last dotted
 * part of ``type`` and of each of ``bases``, and ``"timeout"`` for ``kind`` timeout;
 * a Python exception's names are its class's and its bases' ``__name__``, as the
 * engine matches a local exception. A rule on an exception class ``C`` matches when
 * :meth:`is_a` says so: ``C``'s qualified name (``module.QualName``) is ``type`` or
 * one of ``bases``, which is ``isinstance`` for an exception raised in Python, and
 * an exact match of the qualified name for anything else.
 */
export interface ErrorInfo {
  /**
   * The qualified names of the type's bases, nearest first (Python's MRO after it).
   */
  bases?: string[];
  /**
   * The error this one was raised from or while handling, with its own cause.
   */
  cause?: ErrorInfo | null;
  /**
   * The JSON data a returned Error carries, for rules and handlers.
   */
  data?: unknown;
  /**
   * How the attempt failed: `exception` (it raised), `error` (it returned an Error: `name` and `data` say which), `timeout`, `unserialisable` (its result could not be stored); the engine records others of its own.
   */
  kind?: string;
  /**
   * What went wrong, for people.
   */
  message?: string;
  /**
   * The error's name: the exception class's `__name__`, an Error's name.
   */
  name: string;
  /**
   * Where it went wrong: this error's own stack, without its causes.
   */
  traceback?: string;
  /**
   * The exception type's qualified name, `module.QualName`; empty for an Error.
   */
  type?: string;
}
/**
 * The code asked for something other than the history holds at ``position``.
 *
 * The engine records ``ExecutionStuck``: the execution stops, unfinished, and a worker
 * running code that matches its history resumes it.
 */
export interface ReportNonDeterminism {
  /**
   * The whole account, for people.
   */
  message?: string;
  /**
   * The command's place in the workflow's program order, from 0.
   */
  position: number;
  /**
   * What the history holds there (`activity 'charge'`).
   */
  recorded: string;
  /**
   * What the code asked for instead.
   */
  requested: string;
  type: "ReportNonDeterminism";
}
/**
 * A long attempt is alive: its lease is extended.
 */
export interface Heartbeat {
  /**
   * The attempt's number, from 1.
   */
  attempt: number;
  /**
   * Progress as JSON; the next attempt gets it if this one fails.
   */
  details?: unknown;
  /**
   * The task.
   */
  task_id: string;
  /**
   * The worker that holds the task, as registered.
   */
  worker_id: string;
}
/**
 * The engine's answer to a heartbeat.
 */
export interface HeartbeatResponse {
  /**
   * The attempt is no longer wanted (its execution was cancelled, or its lease ran out and the task went to another worker): stop it; a result will be ignored.
   */
  cancelled?: boolean;
}
/**
 * A registered worker asks for tasks; the answer waits until there is one or ``wait`` passes.
 */
export interface Poll {
  /**
   * How many it takes now: its free slots.
   */
  max_tasks?: number;
  /**
   * Seconds to wait for a task before answering with none.
   */
  wait?: number;
  /**
   * As registered.
   */
  worker_id: string;
}
/**
 * The tasks claimed for the worker, each under a lease; none when ``wait`` passed.
 */
export interface PollResponse {
  /**
   * At most `max_tasks`.
   */
  tasks?: Task[];
}
/**
 * One attempt of a step or an activity, or one activation of a code workflow.
 *
 * A step's ``inputs`` are its parameters by name (``{"inputs": ..., "fetch": ...}``:
 * the workflow's inputs and the results of the steps it depends on); an activity's
 * and a workflow's are the call, ``{"args": [...], "kwargs": {...}}``. An activation
 * carries the ``events`` that came since the worker's last one (all of them when it
 * must rebuild the coroutine: ``from_start``); it ends with a :class:`TaskResult`
 * holding the commands the coroutine gave until it blocked.
 */
export interface Task {
  /**
   * The attempt's number, from 1.
   */
  attempt?: number;
  /**
   * For an activation: the history events the worker has not seen, in order, each as the history stores it (an object tagged by `type`, see cerebelum.events).
   */
  events?: unknown[];
  /**
   * The execution the task belongs to.
   */
  execution_id: string;
  /**
   * For an activation: `events` is the whole history; rebuild the coroutine.
   */
  from_start?: boolean;
  /**
   * The details the last attempt's last heartbeat sent, if any.
   */
  heartbeat_details?: unknown;
  /**
   * Seconds without a heartbeat after which the lease runs out and the task is re-offered.
   */
  heartbeat_timeout?: number | null;
  /**
   * The same on every attempt of this step or activity, for exactly-once effects.
   */
  idempotency_key?: string;
  /**
   * What the attempt runs with, as JSON (see above).
   */
  inputs?: unknown;
  /**
   * For a step: how many times a `back_to` loop has come back to it.
   */
  iteration?: number;
  kind: TaskKind;
  /**
   * The step's, the activity's or the workflow's name.
   */
  name: string;
  /**
   * For an activation: the engine's clock (epoch seconds), what `now()` records.
   */
  now?: number | null;
  /**
   * The queue it was enqueued on.
   */
  queue?: string;
  /**
   * Seconds the attempt may take; the worker stops it then.
   */
  start_to_close_timeout?: number | null;
  /**
   * The task's id: a result or a heartbeat names it.
   */
  task_id: string;
  /**
   * The W3C trace context of the execution's span, when the engine traces: a worker that traces runs the attempt in a span whose parent it is.
   */
  traceparent?: string | null;
  /**
   * The execution's workflow (for a step or an activity).
   */
  workflow?: string;
}
/**
 * A worker joins: what it hosts, the queues it takes tasks from, how many at once.
 *
 * It is offered only tasks on one of its queues whose name it hosts for that kind.
 * Registering again with the same id replaces what it said before.
 */
export interface Register {
  /**
   * The activities it runs.
   */
  activities?: string[];
  /**
   * How many tasks it runs at once.
   */
  concurrency?: number;
  /**
   * The queues it takes tasks from.
   *
   * @minItems 1
   */
  queues?: string[];
  /**
   * The steps it runs, by the name tasks give them.
   */
  steps?: string[];
  /**
   * Unique among live workers; chosen by the worker.
   */
  worker_id: string;
  /**
   * The code workflows whose coroutines it hosts.
   */
  workflows?: string[];
}
/**
 * The engine's answer to :class:`Register`.
 */
export interface Registered {
  /**
   * Seconds a task stays the worker's without a heartbeat: heartbeat each task it holds well within this (a third of it), or it is offered to another worker.
   */
  lease: number;
  /**
   * As registered.
   */
  worker_id: string;
}
/**
 * Results a worker hands back, one or many at once; it keeps each until acknowledged.
 */
export interface Report {
  /**
   * How many new tasks the worker takes in the answer: those these results make ready (the next step of the same execution, say) come back at once, without a poll. 0: none.
   */
  max_tasks?: number;
  /**
   * The results, any order.
   *
   * @minItems 1
   */
  results: TaskResult[];
  /**
   * As registered.
   */
  worker_id: string;
}
/**
 * How an attempt ended: exactly one of ``value``, ``error``, ``commands``.
 */
export interface TaskResult {
  /**
   * The attempt's number, from 1.
   */
  attempt: number;
  /**
   * What a workflow activation asks for, in program order (empty: it waits).
   */
  commands?:
    | (
        | ScheduleActivity
        | StartTimer
        | RequestApproval
        | AwaitSignal
        | StartChild
        | RecordMarker
        | ApplyPatch
        | CompleteWorkflow
        | FailWorkflow
        | ReportNonDeterminism
      )[]
    | null;
  /**
   * How the step or the activity failed.
   */
  error?: ErrorInfo | null;
  /**
   * When the worker began the attempt (epoch seconds), for the history.
   */
  started_at?: number | null;
  /**
   * The task it answers.
   */
  task_id: string;
  /**
   * A step's or an activity's result, as JSON (`null` included).
   */
  value?: unknown;
}
/**
 * Which results are recorded (or were not wanted): the worker may forget those; and
 * the tasks it takes now, leased to it, as a :class:`PollResponse` has them.
 */
export interface ReportResponse {
  /**
   * Task ids the worker may forget.
   */
  acknowledged?: string[];
  /**
   * At most `max_tasks`: the worker runs these too.
   */
  tasks?: Task[];
}
