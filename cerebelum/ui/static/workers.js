// Workers and queues: connected workers, tasks in flight, each queue's depth and limits.
import { duration, el, executionLink, getJSON, main, showError, when } from "./common.js";

const parts = { workers: el("section"), queues: el("section"), tasks: el("section") };

function table(headers, rows, attrs = {}) {
  return el("table", attrs, el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { text: h })))), el("tbody", {}, ...rows));
}

function hosts(h) {
  return Object.entries(h).filter(([, names]) => names.length).map(([kind, names]) => `${kind}: ${names.join(", ")}`).join("; ");
}

async function load() {
  let d;
  try {
    d = await getJSON("/ui/api/workers");
  } catch (error) {
    showError(parts.workers, error);
    return;
  }
  const note = d.dispatch === "workers" ? "" : "This server runs the steps and activities itself (dispatch local): no workers connect to it.";
  parts.workers.replaceChildren(el("h2", { text: "Workers" }), note ? el("p", { class: "empty", text: note }) :
    d.workers.length ? table(["Worker", "Queues", "Hosts", "Concurrency", "Last seen"], d.workers.map((w) => el("tr", { "data-worker": w.id },
      el("td", { class: "mono", text: w.id }), el("td", { text: w.queues.join(", ") }), el("td", { text: hosts(w.hosts) }),
      el("td", { text: w.concurrency }), el("td", { class: "time", text: `${duration(d.now - w.last_seen)} ago` }))), { class: "workers" })
      : el("p", { class: "empty", text: "No worker has been heard from lately." }));
  const queueRows = d.queues.map((q) => el("tr", { "data-queue": q.name },
    el("td", { class: "mono", text: q.name }), el("td", { text: q.ready }), el("td", { text: q.delayed }), el("td", { text: q.leased })));
  const limits = d.execution_queues.map((q) => el("tr", { "data-execution-queue": q.name },
    el("td", { class: "mono", text: q.name }), el("td", { text: q.concurrency ?? "no limit" }),
    el("td", { text: q.limit ? `${q.limit} per ${duration(q.period)}` : "no limit" })));
  parts.queues.replaceChildren(el("h2", { text: "Task queues" }),
    queueRows.length ? table(["Queue", "Ready", "Delayed", "Leased"], queueRows, { class: "queues" }) : el("p", { class: "empty", text: "No task is waiting or running." }),
    el("h2", { text: "Execution queues" }),
    limits.length ? table(["Queue", "Concurrency", "Rate"], limits, { class: "execution-queues" }) : el("p", { class: "empty", text: "No execution queue is declared in this process." }));
  parts.tasks.replaceChildren(el("h2", { text: "Tasks in flight" }), d.tasks.length ? table(
    ["Execution", "Kind", "Name", "Queue", "Attempt", "Status", "Worker", "Since"], d.tasks.map((t) => el("tr", { "data-task": t.id },
      el("td", {}, executionLink(t.execution_id)), el("td", { text: t.kind }), el("td", { text: t.name }), el("td", { text: t.queue }),
      el("td", { text: t.attempt }), el("td", { text: t.status }),
      el("td", { text: t.worker || (t.hosted_by && !t.hosted_by.length ? "no connected worker hosts it" : "") }),
      el("td", { class: "time", text: when(t.since) }))), { class: "tasks" }) : el("p", { class: "empty", text: "None." }));
}

main().replaceChildren(el("h1", { text: "Workers and queues" }), parts.workers, parts.queues, parts.tasks);
load();
setInterval(load, 3000);
