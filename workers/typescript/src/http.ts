// Talking to the server: one POST with a JSON body, and what can go wrong with it.

/** The longest wait between two tries to reach the server, in milliseconds. */
export const MAX_BACKOFF_MS = 5000;
/** The first wait after a failed try, in milliseconds. */
export const FIRST_BACKOFF_MS = 50;

/** The server answered with an error (not a transport failure). */
export class RefusedError extends Error {
  override name = "RefusedError";
  constructor(
    readonly status: number,
    readonly type: string,
    readonly reason: string,
  ) {
    super(`${status} ${type}: ${reason}`);
  }

  /** The server does not know this worker (it restarted): register again. */
  get forgotten(): boolean {
    return this.status === 404 && this.type === "UnknownWorkerError";
  }

  /** The server, or a proxy before it, is away for now: try again. */
  get passing(): boolean {
    return this.status === 502 || this.status === 503 || this.status === 504;
  }
}

/** The server could not be reached, the connection broke, or it did not answer in time. */
export class TransportError extends Error {
  override name = "TransportError";
}

/** The call was cut on purpose (the worker is stopping). */
export class CutError extends Error {
  override name = "CutError";
}

/** Whether a failed call is worth trying again as it is. */
export function retryable(err: unknown): boolean {
  return err instanceof TransportError || (err instanceof RefusedError && err.passing);
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause as { code?: string; message?: string } | undefined;
  if (cause && typeof cause === "object") return cause.code ?? cause.message ?? err.message;
  return err.message;
}

/** POSTs JSON to one server, keeping connections alive (Node's fetch does). */
export class Client {
  private readonly headers: Record<string, string>;

  constructor(
    readonly server: string,
    token: string | undefined,
  ) {
    this.headers = { "content-type": "application/json" };
    if (token) this.headers.authorization = `Bearer ${token}`;
  }

  /**
   * POST `body` (JSON text) to `path` and decode the answer.
   * Throws RefusedError for a status >= 400, TransportError when the server cannot be
   * reached or takes longer than `timeoutMs`, CutError when `cut` is aborted.
   */
  async call<T>(path: string, body: string, timeoutMs: number, cut?: AbortSignal): Promise<T> {
    if (cut?.aborted) throw new CutError("cut");
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    const onCut = () => ctl.abort();
    cut?.addEventListener("abort", onCut);
    let status: number;
    let text: string;
    try {
      const response = await fetch(this.server + path, {
        method: "POST",
        headers: this.headers,
        body,
        signal: ctl.signal,
      });
      status = response.status;
      text = await response.text();
    } catch (err) {
      if (cut?.aborted) throw new CutError("cut");
      if (ctl.signal.aborted) throw new TransportError(`no answer within ${timeoutMs / 1000}s`);
      throw new TransportError(describe(err));
    } finally {
      clearTimeout(timer);
      cut?.removeEventListener("abort", onCut);
    }
    if (status >= 400) {
      let type = "HTTPError";
      let reason = text.slice(0, 200);
      try {
        const error = (JSON.parse(text) as { error?: { type?: unknown; message?: unknown } }).error;
        if (error && typeof error.type === "string") {
          type = error.type;
          reason = String(error.message ?? "");
        }
      } catch {
        // not the server's error shape (a proxy's page): keep the text
      }
      throw new RefusedError(status, type, reason);
    }
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new TransportError(`the answer to ${path} is not JSON: ${text.slice(0, 100)}`);
    }
  }
}

/** Resolves after `ms`, or at once when `signal` is aborted (then it throws CutError). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new CutError("cut"));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new CutError("cut"));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Many waiters woken at once by notify(); each wait() may be cut by a signal. */
export class Notifier {
  private waiters: (() => void)[] = [];

  wait(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const done = () => {
        signal?.removeEventListener("abort", done);
        resolve();
      };
      this.waiters.push(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  notify(): void {
    if (this.waiters.length === 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
