// The executions page: a table, filters in the address, pages by keyset (the `next` cursor).
import { badge, duration, el, executionLink, getJSON, main, showError, when } from "./common.js";

const STATUSES = ["", "queued", "running", "waiting", "completed", "failed", "cancelled", "stuck"];

const params = new URLSearchParams(location.search);
const state = {
  status: params.get("status") || "",
  workflow: params.get("workflow") || "",
  id: params.get("id") || "",
  before: params.get("before") || "",
  stack: [], // the cursors of the pages before this one, for "Newer"
};

const table = el("table", { class: "executions" },
  el("thead", {}, el("tr", {}, ...["Status", "Workflow", "Id", "Started", "Duration"].map((h) => el("th", { text: h })))),
  el("tbody"));
const pager = el("div", { class: "pager" });
const message = el("div");

function filters() {
  const status = el("select", { name: "status", "aria-label": "status" },
    ...STATUSES.map((s) => el("option", { value: s, text: s || "any status", selected: s === state.status })));
  const workflow = el("input", { name: "workflow", placeholder: "workflow", value: state.workflow, "aria-label": "workflow", list: "workflows" });
  const id = el("input", { name: "id", placeholder: "id starts with…", value: state.id, "aria-label": "id prefix" });
  const form = el("form", { class: "filters", onsubmit: (event) => {
    event.preventDefault();
    state.status = status.value;
    state.workflow = workflow.value.trim();
    state.id = id.value.trim();
    state.before = "";
    state.stack = [];
    load();
  } }, status, workflow, id, el("button", { type: "submit", text: "Filter" }), el("datalist", { id: "workflows" }));
  status.addEventListener("change", () => form.requestSubmit());
  return form;
}

function address() {
  const q = new URLSearchParams();
  for (const key of ["status", "workflow", "id", "before"]) if (state[key]) q.set(key, state[key]);
  const text = q.toString();
  history.replaceState(null, "", text ? `?${text}` : location.pathname);
  return q;
}

async function load() {
  const q = address();
  q.set("limit", "50");
  let page;
  try {
    page = await getJSON(`/ui/api/executions?${q}`);
  } catch (error) {
    showError(message, error);
    return;
  }
  message.replaceChildren();
  const rows = page.executions.map((x) => el("tr", { "data-id": x.id },
    el("td", {}, badge(x.status)),
    el("td", { text: x.workflow }),
    el("td", {}, executionLink(x.id)),
    el("td", { class: "time", text: when(x.created_at) }),
    el("td", { text: duration(x.duration ?? page.now - x.created_at) + (x.duration === null ? " so far" : "") })));
  table.tBodies[0].replaceChildren(...rows);
  if (!rows.length) message.replaceChildren(el("p", { class: "empty", text: "No executions match." }));
  const names = [...new Set(page.executions.map((x) => x.workflow))].sort();
  document.getElementById("workflows").replaceChildren(...names.map((n) => el("option", { value: n })));
  const newer = el("button", { text: "← Newer", disabled: !state.stack.length && !state.before, onclick: () => {
    state.before = state.stack.pop() || "";
    load();
  } });
  const older = el("button", { text: "Older →", disabled: !page.next, onclick: () => {
    state.stack.push(state.before);
    state.before = page.next;
    load();
  } });
  pager.replaceChildren(newer, older);
}

main().replaceChildren(el("h1", { text: "Executions" }), filters(), table, message, pager);
load();
// the first page follows what is new; an older page stays as it was read
setInterval(() => { if (!state.before && !document.hidden) load(); }, 5000);
