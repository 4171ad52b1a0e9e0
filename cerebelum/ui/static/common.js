// What every page shares: the token, data calls, building elements, times, dialogs.
// Data from the server is only ever put in the page as text (textContent, attributes):
// never as markup.

const TOKEN_KEY = "cerebelum-token";

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = String(value);
    else if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const main = () => document.getElementById("main");

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function askToken(message) {
  const dialog = document.getElementById("login");
  const input = document.getElementById("login-token");
  document.getElementById("login-error").textContent = message || "";
  input.value = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      resolve();
    }, { once: true });
    dialog.showModal();
  });
}

// A request with the bearer token; a 401 asks for the token and tries again.
export async function request(path, options = {}) {
  for (;;) {
    const headers = { ...(options.headers || {}) };
    if (token()) headers.Authorization = `Bearer ${token()}`;
    const response = await fetch(path, { ...options, headers });
    if (response.status === 401) {
      await askToken(token() ? "That token was refused." : "");
      continue;
    }
    return response;
  }
}

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `the server answered ${status}`);
    this.status = status;
    this.type = error.type;
    this.field = error.field;
  }
}

export async function getJSON(path) {
  const response = await request(path);
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

export async function postJSON(path, data) {
  const response = await request(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(data),
  });
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

// Server-sent events read through fetch, so that they carry the token as every call does.
export async function stream(path, onMessage, signal) {
  const response = await request(path, { signal, headers: { Accept: "text/event-stream" } });
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (data) onMessage(JSON.parse(data));
    }
  }
}

// --- showing values ----------------------------------------------------------------

export function when(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const d = new Date(seconds * 1000);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return Math.round(seconds % 60) ? `${m} min ${Math.round(seconds % 60)} s` : `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

export function badge(status) {
  return el("span", { class: `badge status-${status.replace(/\s+/g, "-")}`, "data-status": status, text: status });
}

export function pretty(value) {
  return el("pre", { class: "json", text: JSON.stringify(value, null, 2) });
}

export function executionLink(id) {
  return el("a", { href: `/executions/${encodeURIComponent(id)}`, class: "mono", text: id });
}

export function showError(where, error) {
  where.replaceChildren(el("p", { class: "error", role: "alert", text: error.message || String(error) }));
}

// --- confirming an action -------------------------------------------------------------

// Opens the confirmation dialog with `fields` (elements) in it; resolves with what
// `action()` returned once it succeeded, or null when cancelled. An error of the action
// is shown in the dialog, which stays open.
export function confirmAction(title, fields, okLabel, action) {
  const dialog = document.getElementById("confirm");
  const ok = document.getElementById("confirm-ok");
  const errorLine = document.getElementById("confirm-error");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-body").replaceChildren(...fields);
  errorLine.textContent = "";
  ok.textContent = okLabel;
  return new Promise((resolve) => {
    const onClick = async (event) => {
      event.preventDefault();
      ok.disabled = true;
      try {
        const result = await action();
        cleanup();
        dialog.close("done");
        resolve(result);
      } catch (error) {
        errorLine.textContent = error.message || String(error);
      } finally {
        ok.disabled = false;
      }
    };
    const onClose = () => {
      if (dialog.returnValue !== "done") { cleanup(); resolve(null); }
    };
    const cleanup = () => {
      ok.removeEventListener("click", onClick);
      dialog.removeEventListener("close", onClose);
    };
    ok.addEventListener("click", onClick);
    dialog.addEventListener("close", onClose);
    dialog.returnValue = "";
    dialog.showModal();
  });
}

// A textarea for optional JSON; `read()` gives its value, or throws naming the field.
export function jsonField(label, name) {
  const area = el("textarea", { name, rows: 4, placeholder: "{}  (optional JSON)", spellcheck: "false" });
  const wrapper = el("label", {}, el("span", { text: label }), area);
  const read = () => {
    const text = area.value.trim();
    if (!text) return undefined;
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new Error(`${label} is not JSON: ${error.message}`);
    }
  };
  return { element: wrapper, read };
}
