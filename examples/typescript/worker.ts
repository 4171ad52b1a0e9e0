// The TypeScript half of payments.py: two steps and an activity, hosted by name.
// Build: npm ci && npm run build; run: node dist/worker.js http://127.0.0.1:8080
import { Worker } from "cerebelum-worker";

interface Reserved { order: string; amount: number }

const worker = new Worker({
  server: process.argv[2] ?? "http://127.0.0.1:8080",
  queue: "payments",
  token: process.env.CEREBELUM_WORKER_TOKEN,
  concurrency: 10,
});

// a step's inputs are its parameters by name: the workflow's `inputs`, and the result
// of each step it runs after (`after=[reserve]` in payments.py)
worker.step("charge_card", async (ctx, inputs) => {
  const { order, amount } = inputs.reserve as Reserved;
  if (amount > 1000) {
    // routed like Python's Error("payment_failed", data): to refund, in payments.py
    return { error: "payment_failed", data: { limit: 1000, amount } };
  }
  // ctx.idempotencyKey is the same if this step runs again: pass it to the gateway
  return { charged: amount, order, key: ctx.idempotencyKey };
});

worker.step("send_receipt", async (ctx, inputs) => {
  const shipped = inputs.ship as { shipped: string; paid: number };
  return { receipt: `${shipped.shipped}: ${shipped.paid} paid` };
});

worker.activity("resize_image", async (ctx, url, width) => `${url}?width=${width}`);

await worker.run({ handleSignals: true }); // SIGTERM: finish what it holds, then exit
