// Talking to the server: one POST with a JSON body, and what can go wrong with it.
import http from "node:http";
import https from "node:https";

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
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
}

/**
 * POSTs JSON to one server over kept-alive connections. node:http rather than fetch:
 * a request costs this worker about a third of the CPU (measured on loopback), and a
 * worker sends one per task it runs.
 */
export class Client {
  private readonly headers: Record<string, string>;
  private readonly agent: http.Agent;
  private readonly request: typeof http.request;
  private readonly base: URL;
  private readonly urls = new Map<string, URL>();

  constructor(
    readonly server: string,
    token: string | undefined,
  ) {
    this.base = new URL(server.endsWith("/") ? server : `${server}/`);
    if (this.base.protocol !== "http:" && this.base.protocol !== "https:") {
      throw new TypeError(`the server's URL is http:// or https://, not ${server}`);
    }
    const secure = this.base.protocol === "https:";
    this.request = secure ? https.request : http.request;
    this.agent = secure ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
    this.headers = { "content-type": "application/json" };
    if (token) this.headers.authorization = `Bearer ${token}`;
  }

  /** Closes the connections kept alive. */
  close(): void {
    this.agent.destroy();
  }

  /**
   * POST `body` (JSON text) to `path` and decode the answer.
   * Throws RefusedError for a status >= 400, TransportError when the server cannot be
   * reached or takes longer than `timeoutMs`, CutError when `cut` is aborted.
   */
  call<T>(path: string, body: string, timeoutMs: number, cut?: AbortSignal): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (cut?.aborted) return reject(new CutError("cut"));
      let settled = false;
      const finish = (err: Error | undefined, value?: T) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        cut?.removeEventListener("abort", onCut);
        if (err) reject(err);
        else resolve(value as T);
      };
      let url = this.urls.get(path);
      if (url === undefined) {
        url = new URL(path.replace(/^\//, ""), this.base);
        this.urls.set(path, url);
      }
      const req = this.request(
        url,
        {
          method: "POST",
          agent: this.agent,
          headers: { ...this.headers, "content-length": Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("error", (err) => finish(new TransportError(describe(err))));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            const status = res.statusCode ?? 0;
            if (status >= 400) return finish(refusal(status, text));
            try {
              finish(undefined, JSON.parse(text) as T);
            } catch {
              finish(new TransportError(`the answer to ${path} is not JSON: ${text.slice(0, 100)}`));
            }
          });
        },
      );
      const timer = setTimeout(() => {
        finish(new TransportError(`no answer within ${timeoutMs / 1000}s`));
        req.destroy();
      }, timeoutMs);
      const onCut = () => {
        finish(new CutError("cut"));
        req.destroy();
      };
      cut?.addEventListener("abort", onCut, { once: true });
      req.on("error", (err) => finish(new TransportError(describe(err))));
      req.end(body);
    });
  }
}

function refusal(status: number, text: string): RefusedError {
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
  return new RefusedError(status, type, reason);
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
