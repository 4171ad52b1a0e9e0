// The default logger: one terse line per event on stderr; debug lines only with
// CEREBELUM_WORKER_DEBUG set.
import type { Logger } from "./types.js";

const debug = Boolean(process.env.CEREBELUM_WORKER_DEBUG);

export const consoleLogger: Logger = {
  debug: debug ? (m) => console.error(`cerebelum-worker: ${m}`) : undefined,
  info: (m) => console.error(`cerebelum-worker: ${m}`),
  warn: (m) => console.error(`cerebelum-worker: warning: ${m}`),
  error: (m) => console.error(`cerebelum-worker: error: ${m}`),
};

export const silentLogger: Logger = {
  info: () => {},
  warn: () => {},
  error: () => {},
};
