// One execution: what it is, its graph or timeline with live states, its history, actions.
// It follows the execution through /ui/api/executions/{id}/events (server-sent events)
// and redraws what changed, without reloading the page.
import {
  badge, confirmAction, duration, el, executionLink, getJSON, jsonField, main, postJSON,
  pretty, showError, stream, when,
} from "./common.js";

const id = decodeURIComponent(location.pathname.slice("/executions/".length));
const api = `/ui/api/executions/${encodeURIComponent(id)}`;
const v1 = `/v1/executions/${encodeURIComponent(id)}`;
const TERMINAL = ["completed", "failed", "cancelled"];
const SVG = "http://www.w3.org/2000/svg";

const parts = {
  head: el("section", { class: "head" }),
  actions: el("div", { class: "actions" }),
  io: el("section", { class: "io" }),
  picture: el("section", { class: "picture" }),
  children: el("section", { class: "children" }),
  history: el("ol", { class: "history", id: "history" }),
};
let lastSeq = 0;
let current = null;

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function renderHead(d) {
  const x = d.execution;
  const facts = [
    ["Workflow", x.workflow], ["Kind", x.kind], ["Version", x.version],
    ["Started", when(x.created_at)],
    [TERMINAL.includes(x.status) ? "Took" : "Running for",
      duration(x.duration ?? d.now - x.created_at)],
  ];
  if (x.queue) facts.push(["Queue", x.queue]);
  if (x.waiting_for) facts.push(["Waits for", x.waiting_for]);
  const dl = el("dl", {}, ...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
  if (x.parent_id) dl.append(el("dt", { text: "Parent" }), el("dd", {}, executionLink(x.parent_id)));
  parts.head.replaceChildren(
    el("h1", {}, el("span", { class: "mono", id: "execution-id", text: x.id }), " ", badge(x.status)),
    dl, parts.actions);
  renderActions(d);
}

function renderActions(d) {
  const x = d.execution;
  const buttons = [];
  if (!TERMINAL.includes(x.status)) {
    for (const a of d.approvals) {
      buttons.push(el("button", { class: "primary", "data-action": "approve", "data-name": a.name,
        text: `Approve ${a.name}`, onclick: () => decide("approve", a.name) }));
      buttons.push(el("button", { "data-action": "reject", "data-name": a.name,
        text: `Reject ${a.name}`, onclick: () => decide("reject", a.name) }));
    }
    if (x.kind === "code") buttons.push(el("button", { "data-action": "signal", text: "Signal…", onclick: () => signal(d) }));
    buttons.push(el("button", { class: "danger", "data-action": "cancel", text: "Cancel…", onclick: cancel }));
  }
  parts.actions.replaceChildren(...buttons);
}

export async function decide(kind, name) {
  const data = jsonField("Data", "data");
  const done = await confirmAction(`${kind === "approve" ? "Approve" : "Reject"} “${name}”?`,
    [el("p", { text: `Execution ${id} waits for the approval “${name}”.` }), data.element],
    kind === "approve" ? "Approve" : "Reject",
    () => postJSON(`${v1}/${kind}`, { name, data: data.read() ?? null }));
  if (done) refresh();
}

async function signal(d) {
  const name = el("input", { name: "signal", required: true, list: "signal-names", placeholder: "name" });
  const names = el("datalist", { id: "signal-names" }, ...d.signals.map((s) => el("option", { value: s })));
  const payload = jsonField("Payload", "payload");
  const done = await confirmAction("Send a signal", [el("label", {}, el("span", { text: "Name" }), name, names), payload.element],
    "Send", () => {
      if (!name.value.trim()) throw new Error("a signal needs a name");
      return postJSON(`${v1}/signal`, { name: name.value.trim(), payload: payload.read() ?? null });
    });
  if (done) refresh();
}

async function cancel() {
  const reason = el("input", { name: "reason", placeholder: "reason (optional)" });
  const done = await confirmAction(`Cancel ${id}?`,
    [el("p", { text: "Its steps stop being run; the execution ends as cancelled." }), el("label", {}, el("span", { text: "Reason" }), reason)],
    "Cancel the execution", () => postJSON(`${v1}/cancel`, { reason: reason.value }));
  if (done) refresh();
}

function renderIO(d) {
  const blocks = [el("div", {}, el("h2", { text: "Inputs" }), pretty(d.inputs))];
  if (d.execution.status === "completed") blocks.push(el("div", { id: "output" }, el("h2", { text: "Output" }), pretty(d.output)));
  if (d.error) {
    const e = d.error;
    blocks.push(el("div", { class: "failure", id: "error" }, el("h2", { text: "Error" }),
      el("p", {}, el("strong", { text: e.kind || "error" }), e.step ? ` at step ${e.step}: ` : ": ", e.message || ""),
      e.traceback ? el("pre", { class: "traceback", text: e.traceback }) : null,
      el("details", {}, el("summary", { text: "everything recorded" }), pretty(e))));
  }
  parts.io.replaceChildren(...blocks);
}

function renderGraph(g) {
  if (!g) {
    parts.picture.replaceChildren(el("p", { class: "empty", text: "The blueprint of this version is not in the store." }));
    return;
  }
  const box = svg("svg", { viewBox: `0 0 ${g.width} ${g.height}`, width: g.width, height: g.height, class: "graph", role: "img", "aria-label": "the workflow's graph" });
  const defs = svg("defs");
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z" }));
  defs.append(marker);
  box.append(defs);
  const at = Object.fromEntries(g.nodes.map((n) => [n.name, n]));
  for (const e of g.edges) {
    const a = at[e.source], b = at[e.target];
    const x1 = a.x + a.w / 2, y1 = a.y + a.h, x2 = b.x + b.w / 2, y2 = b.y;
    let d;
    if (b.layer > a.layer) {
      const mid = (y1 + y2) / 2;
      d = `M${x1},${y1} C${x1},${mid} ${x2},${mid} ${x2},${y2}`;
    } else { // back up (back_to), or beside: around the right side
      const xr = Math.max(a.x + a.w, b.x + b.w) + 24;
      d = `M${a.x + a.w},${a.y + a.h / 2} C${xr},${a.y + a.h / 2} ${xr},${b.y + b.h / 2} ${b.x + b.w},${b.y + b.h / 2}`;
    }
    const path = svg("path", { d, class: `edge edge-${e.kind}`, "marker-end": "url(#arrow)" });
    const title = svg("title", {}, `${e.source} → ${e.target}${e.label ? ` (${e.label})` : ""}`);
    path.append(title);
    box.append(path);
    if (e.label && e.kind !== "sequence" && e.kind !== "data") {
      const tx = b.layer > a.layer ? (x1 + x2) / 2 : Math.max(a.x + a.w, b.x + b.w) + 28;
      const ty = b.layer > a.layer ? (y1 + y2) / 2 : (a.y + b.y + a.h) / 2;
      box.append(svg("text", { x: tx, y: ty, class: "edge-label", "data-edge": `${e.source}->${e.target}` }, e.label));
    }
  }
  for (const n of g.nodes) {
    const s = g.states[n.name] || { state: "not reached", detail: "not reached" };
    const group = svg("g", { class: `node kind-${n.kind} state-${s.state.replace(" ", "-")}`, "data-node": n.name, "data-state": s.state, transform: `translate(${n.x},${n.y})` });
    group.append(svg("title", {}, `${n.name} (${n.kind}): ${s.detail}${s.attempts > 1 ? `, ${s.attempts} attempts` : ""}${s.duration ? `, ${duration(s.duration)}` : ""}`));
    group.append(svg("rect", { width: n.w, height: n.h, rx: n.kind === "step" ? 6 : 20 }));
    const label = n.name.length > 22 ? `${n.name.slice(0, 21)}…` : n.name;
    group.append(svg("text", { x: n.w / 2, y: 19, class: "name" }, label));
    group.append(svg("text", { x: n.w / 2, y: 36, class: "state" }, s.detail));
    box.append(group);
  }
  const legend = el("p", { class: "legend" }, ...["done", "running", "waiting", "failed", "skipped", "not reached"].map(
    (s) => el("span", { class: `key state-${s.replace(" ", "-")}`, text: s })));
  parts.picture.replaceChildren(el("h2", { text: "Graph" }), el("div", { class: "graph-box" }, box), legend);
}

function renderTimeline(rows, now, ended) {
  const first = rows.length ? Math.min(...rows.map((r) => r.start)) : 0;
  if (ended) now = Math.max(first, ...rows.map((r) => r.end || r.start));
  const last = Math.max(now, ...rows.map((r) => r.end || now));
  const span = Math.max(last - first, 0.001);
  const body = rows.map((r) => {
    const left = ((r.start - first) / span) * 100;
    const width = Math.max((((r.end || now) - r.start) / span) * 100, 0.5);
    return el("tr", { "data-position": r.position, "data-state": r.state },
      el("td", { class: "mono", text: r.position }),
      el("td", { text: r.kind }),
      el("td", {}, r.child_id ? executionLink(r.child_id) : r.name),
      el("td", {}, badge(r.state)),
      el("td", { text: r.attempts > 1 ? `${r.attempts}` : "" }),
      el("td", { class: "time", text: when(r.start) }),
      el("td", { text: r.end ? duration(r.end - r.start) : r.until ? `until ${when(r.until)}` : "" }),
      el("td", { class: "bar-cell" }, el("span", { class: `bar state-${r.state.replace(" ", "-")}`, style: `margin-left:${left}%;width:${width}%` })));
  });
  const table = el("table", { class: "timeline" },
    el("thead", {}, el("tr", {}, ...["#", "Kind", "Name", "State", "Attempts", "Started", "Took", ""].map((h) => el("th", { text: h })))),
    el("tbody", {}, ...body));
  parts.picture.replaceChildren(el("h2", { text: "Timeline" }),
    rows.length ? table : el("p", { class: "empty", text: "No activities, sleeps or waits yet." }));
}

function renderChildren(children, tasks) {
  const blocks = [];
  if (tasks.length) {
    blocks.push(el("h2", { text: "Tasks in flight" }), el("ul", { class: "tasks" }, ...tasks.map((t) => el("li", { "data-task": t.id },
      `${t.kind} ${t.name} on queue ${t.queue}, attempt ${t.attempt}: `,
      t.status === "leased" ? `running on worker ${t.worker}` : "waiting for a worker"))));
  }
  if (children.length) {
    blocks.push(el("h2", { text: "Children" }), el("ul", {}, ...children.map(
      (c) => el("li", {}, executionLink(c.id), " ", c.workflow, " ", badge(c.status)))));
  }
  parts.children.replaceChildren(...blocks);
}

function appendHistory(events) {
  const start = events.length ? events[0].at : 0;
  for (const e of events) {
    if (e.seq <= lastSeq) continue;
    lastSeq = e.seq;
    const { type, seq, at, ...data } = e;
    const summary = el("summary", {},
      el("span", { class: "seq", text: seq }), el("span", { class: "type", text: type }),
      el("span", { class: "time", text: when(at) }),
      el("span", { class: "since", text: `+${duration(at - (parts.history.dataset.start || start))}` }),
      el("span", { class: "brief", text: brief(e) }));
    parts.history.append(el("li", { "data-type": type, "data-seq": seq },
      el("details", {}, summary, pretty(data))));
  }
  if (!parts.history.dataset.start && events.length) parts.history.dataset.start = start;
}

function brief(e) {
  const name = e.step ?? e.activity ?? e.name ?? e.timer ?? e.child_id ?? "";
  if (e.type === "ApprovalResolved") return `${e.step}: ${e.timed_out ? "timed out" : e.approved ? "approved" : "rejected"}`;
  if (e.type === "ExecutionFailed" || e.type === "StepFailed") return `${name} ${e.error?.message ?? ""}`;
  if (e.type === "ActivityScheduled") return `#${e.position} ${e.activity}`;
  return String(name);
}

function render(d) {
  current = d;
  document.title = `${d.execution.id} · ${d.execution.status} · Cerebelum`;
  renderHead(d);
  renderIO(d);
  if (d.execution.kind === "graph") renderGraph(d.graph);
  else renderTimeline(d.timeline, d.now, TERMINAL.includes(d.execution.status));
  renderChildren(d.children, d.tasks);
  appendHistory(d.history);
}

async function refresh() {
  try {
    render(await getJSON(api));
  } catch (error) {
    showError(parts.head, error);
  }
}

async function follow() {
  const live = document.getElementById("live");
  for (;;) {
    try {
      live.textContent = "● live";
      live.className = "on";
      await stream(`${api}/events`, render);
    } catch (error) {
      if (error.status === 404) { showError(main(), error); return; }
    }
    live.textContent = "";
    live.className = "";
    if (current && TERMINAL.includes(current.execution.status)) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

main().replaceChildren(parts.head, parts.io, parts.picture, parts.children,
  el("section", {}, el("h2", { text: "History" }), parts.history));
follow();
