// The bench's TypeScript worker: the steps of bench/systems/cerebelum.py's graph
// workflows (graph_two, graph_chain), hosted by their task names, each returning x + 1
// as the Python steps do. Usage: node bench/ts/worker.mjs SERVER_URL
import { Worker } from "../../workers/typescript/dist/index.js";

const worker = new Worker({ server: process.argv[2], queue: "default", concurrency: 100 });
worker.step("graph_two.g1", async (ctx, inputs) => inputs.inputs + 1);
worker.step("graph_two.g2", async (ctx, inputs) => inputs.g1 + 1);
for (let i = 0; i < 10; i++) {
  worker.step(`graph_chain.c${i}`, async (ctx, inputs) => (i ? inputs[`c${i - 1}`] : inputs.inputs) + 1);
}
await worker.run({ handleSignals: true }); // SIGTERM: finish what it holds, then exit
