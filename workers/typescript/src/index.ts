// cerebelum-worker: runs the steps and activities a Cerebelum server hands out.
export { Worker } from "./worker.js";
export type {
  ActivityHandler,
  Context,
  Logger,
  ReturnedError,
  RunOptions,
  StepHandler,
  WorkerOptions,
} from "./types.js";
export { errorInfo } from "./outcome.js";
export type * as protocol from "./protocol.js";
