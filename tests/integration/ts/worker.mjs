// The TypeScript half of tests/integration/test_typescript_worker.py: the remote steps
// and the activity of tests/integration/remote_workflows.py. Each run is logged to
// $WORKER_TEST_DIR/runs.log ("ts NAME KEY ATTEMPT PID"), across processes.
// Usage: node worker.mjs SERVER_URL
import { appendFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Worker } from "../../../workers/typescript/dist/index.js";

const dir = process.env.WORKER_TEST_DIR;
const log = (name, ctx) =>
  appendFileSync(join(dir, "runs.log"), `ts ${name} ${ctx.idempotencyKey} ${ctx.attempt} ${process.pid}\n`);

class CardDeclined extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = "CardDeclined";
  }
}

const worker = new Worker({
  server: process.argv[2],
  queues: ["payments", "images"],
  concurrency: 8,
});

worker.step("charge_card", async (ctx, inputs) => {
  log("charge_card", ctx);
  const { amount, order } = inputs.reserve;
  if (inputs.inputs.hold) {
    // held until the test lets it go: the worker is killed or stopped meanwhile
    while (!existsSync(join(dir, `release-${order}`))) await sleep(20);
  }
  if (amount > 1000) return { error: "payment_failed", data: { limit: 1000, amount } };
  if (amount < 0) throw new CardDeclined(`card refused for ${order}`, { cause: new RangeError("negative amount") });
  return { charged: amount, order };
});

worker.step("send_receipt", async (ctx, inputs) => {
  log("send_receipt", ctx);
  return { receipt: `${inputs.ship.shipped}:${inputs.charge_card.charged}` };
});

worker.activity("resize_image", async (ctx, url, width) => {
  log("resize_image", ctx);
  return `${url}?w=${width}`;
});

await worker.run({ handleSignals: true }); // SIGTERM: finish what it holds, then exit
