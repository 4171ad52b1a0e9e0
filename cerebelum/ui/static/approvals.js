// The approvals inbox: every approval a waiting execution waits for, approve or reject here.
import { confirmAction, duration, el, executionLink, getJSON, jsonField, main, postJSON, showError, when } from "./common.js";

const table = el("table", { class: "approvals" },
  el("thead", {}, el("tr", {}, ...["Execution", "Workflow", "Approval", "Waiting since", "Times out", ""].map((h) => el("th", { text: h })))),
  el("tbody"));
const message = el("div");

async function decide(kind, a) {
  const data = jsonField("Data", "data");
  const done = await confirmAction(`${kind === "approve" ? "Approve" : "Reject"} “${a.name}” of ${a.execution_id}?`,
    [data.element], kind === "approve" ? "Approve" : "Reject",
    () => postJSON(`/v1/executions/${encodeURIComponent(a.execution_id)}/${kind}`, { name: a.name, data: data.read() ?? null }));
  if (done) setTimeout(load, 300);
}

async function load() {
  let body;
  try {
    body = await getJSON("/ui/api/approvals");
  } catch (error) {
    showError(message, error);
    return;
  }
  message.replaceChildren(body.approvals.length ? "" : el("p", { class: "empty", text: "Nothing waits for an approval." }));
  table.tBodies[0].replaceChildren(...body.approvals.map((a) => el("tr", { "data-id": a.execution_id, "data-name": a.name },
    el("td", {}, executionLink(a.execution_id)),
    el("td", { text: a.workflow }),
    el("td", { class: "mono", text: a.name }),
    el("td", { class: "time", text: `${when(a.since)} (${duration(body.now - a.since)} ago)` }),
    el("td", { class: "time", text: a.timeout_at ? `${when(a.timeout_at)} (in ${duration(Math.max(a.timeout_at - body.now, 0))})` : "never" }),
    el("td", { class: "buttons" },
      el("button", { class: "primary", "data-action": "approve", text: "Approve", onclick: () => decide("approve", a) }),
      el("button", { "data-action": "reject", text: "Reject", onclick: () => decide("reject", a) })))));
}

main().replaceChildren(el("h1", { text: "Approvals" }), table, message);
load();
setInterval(() => { if (!document.querySelector("dialog[open]")) load(); }, 5000);
