// Parley console: sign-in, server-rendered views, live updates from /ws. No dependencies.
//
// The key lives in this tab's sessionStorage and travels only as the X-API-Key header.
// The event socket opens with a single-use ticket (POST /api/v1/ws-tickets). An event tells
// the page what changed; it fetches that part's HTML again with ?after=<position>, so the
// server answers once its views have applied the event. Nothing polls.
"use strict";

const KEY = "parley.key";
const NS = "parley.namespace";
const $ = (selector) => document.querySelector(selector);

const session = {
  get key() { return sessionStorage.getItem(KEY); },
  get namespace() { return sessionStorage.getItem(NS) || "default"; },
};

async function api(path, options = {}) {
  const headers = { "X-API-Key": session.key, "X-Parley-Namespace": session.namespace };
  const response = await fetch(path, { ...options, headers: { ...headers, ...options.headers } });
  if (response.status === 401) signOut("Your key was refused: sign in again.");
  return response;
}

async function errorText(response) {
  try {
    const body = await response.json();
    return `${body.error.code}: ${body.error.message}`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

function showSignedIn(signedIn) {
  $("#sign-in").hidden = signedIn;
  for (const node of document.querySelectorAll(".signed-in")) node.hidden = !signedIn;
  if (!signedIn) $("#key").focus();
}

function signOut(message) {
  sessionStorage.removeItem(KEY);
  live.close();
  showSignedIn(false);
  $("#sign-in-error").textContent = message || "";
}

async function signIn(event) {
  event.preventDefault();
  const key = $("#key").value.trim();
  const response = await fetch("/api/v1/ws-tickets", { method: "POST", headers: { "X-API-Key": key } });
  if (!response.ok) {
    $("#sign-in-error").textContent = await errorText(response);
    return;
  }
  sessionStorage.setItem(KEY, key);
  $("#key").value = "";
  start();
}

// --- views -----------------------------------------------------------------------------

function focusKey(node) {  // what a person had focused, found again after a redraw
  const active = document.activeElement;
  if (!active || !node.contains(active) || active === node) return null;
  if (active.dataset.action) return `button[data-action="${active.dataset.action}"]`;
  return active.getAttribute("href") ? `a[href="${active.getAttribute("href")}"]` : null;
}

function refocus(node, key) {
  if (!key) return;
  const again = node.querySelector(key) || node.querySelector("button[data-action]") || node.querySelector("a");
  if (again) again.focus();
}

const view = {
  timer: null,
  after: 0,
  async load(after) {  // the view's HTML; its position (the live feed resumes after it)
    const main = $("#view");
    const response = await api(`${main.dataset.view}?after=${after || 0}`);
    const key = focusKey(main);
    main.innerHTML = response.ok ? await response.text() : `<p class="error" role="alert"></p>`;
    if (!response.ok) main.querySelector(".error").textContent = await errorText(response);
    refocus(main, key);
    return Number(response.headers.get("X-Parley-Position") || 0);
  },
  refresh(position) {  // coalesce a burst of events into one fetch
    view.after = Math.max(view.after, position);
    if (view.timer === null) {
      view.timer = setTimeout(() => { view.timer = null; view.load(view.after); }, 100);
    }
  },
};

const rows = {  // the fleet: the rows of the agents that changed, in one fetch per burst
  pending: new Set(),
  after: 0,
  timer: null,
  touch(agentId, position) {
    rows.pending.add(agentId);
    rows.after = Math.max(rows.after, position);
    if (rows.timer === null) rows.timer = setTimeout(rows.flush, 50);
  },
  async flush() {
    const ids = [...rows.pending].slice(0, 100);
    for (const id of ids) rows.pending.delete(id);
    const query = ids.map((id) => `agent_id=${encodeURIComponent(id)}`).join("&");
    const response = await api(`${$("#view").dataset.rows}?${query}&after=${rows.after}`);
    rows.timer = rows.pending.size ? setTimeout(rows.flush, 0) : null;
    const body = $("#fleet-rows");
    if (!response.ok || !body) return;
    const template = document.createElement("template");
    template.innerHTML = await response.text();
    for (const row of [...template.content.querySelectorAll("tr[data-agent]")]) {
      const old = document.getElementById(row.id);
      const key = old && focusKey(old);
      if (row.hasAttribute("data-gone")) { if (old) old.remove(); }
      else if (old) { old.replaceWith(row); refocus(row, key); }
      else body.append(row);
    }
    $("#agent-count").textContent = String(body.rows.length);
    $("#fleet-empty").hidden = body.rows.length > 0;
  },
};

function agentOf(event) {
  if (event.stream.startsWith("agent-")) return event.subject;
  return event.data && typeof event.data.agent_id === "string" ? event.data.agent_id : null;
}

function onEvent(event) {
  const main = $("#view");
  if (main.classList.contains("events")) return eventLog.add(event);
  if (!main.dataset.rows) return view.refresh(event.position);
  const agentId = agentOf(event);  // the fleet: only the rows of the agents named
  if (agentId) rows.touch(agentId, event.position);
}

// --- the event socket --------------------------------------------------------------------

const live = {
  socket: null,
  seen: 0,
  retry: 500,
  filter: {},
  opening: 0,  // bumped by every open and close: an open overtaken while it waits gives up
  status(text) { $("#live").textContent = text; },
  close() {
    live.opening += 1;
    if (live.socket) { live.socket.onclose = null; live.socket.close(); live.socket = null; }
    live.status("offline");
  },
  async open(filter, fromPosition) {
    live.close();
    const mine = live.opening;
    live.filter = filter;
    const response = await api("/api/v1/ws-tickets", { method: "POST" });
    if (mine !== live.opening) return;  // opened again (another namespace, say) meanwhile
    if (!response.ok) { live.status("offline"); return live.later(); }
    const { data } = await response.json();
    if (mine !== live.opening) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws?ticket=${encodeURIComponent(data.ticket)}`);
    live.socket = socket;
    socket.onopen = () => {
      const subscribe = { type: "subscribe", id: "console", filter: { ...filter, namespace: session.namespace } };
      socket.send(JSON.stringify({ ...subscribe, from_position: fromPosition }));
    };
    socket.onmessage = (message) => {
      const frame = JSON.parse(message.data);
      if (frame.type === "subscribed") {
        live.retry = 500;
        live.status("live");
        live.seen = Math.max(live.seen, frame.position);
      } else if (frame.type === "event") {
        live.seen = Math.max(live.seen, frame.event.position);
        onEvent(frame.event);
      } else if (frame.type === "error") {
        live.status(`error: ${frame.error ? frame.error.message : "?"}`);
      }
    };
    socket.onclose = () => { live.socket = null; live.status("reconnecting"); live.later(); };
  },
  later() {  // reconnect after a drop, resuming from the last position seen
    live.retry = Math.min(live.retry * 2, 10000);
    setTimeout(() => { if (session.key && !live.socket) live.open(live.filter, live.seen); }, live.retry);
  },
};

// --- the event log -----------------------------------------------------------------------

const eventLog = {
  add(event) {
    const row = document.createElement("tr");
    const trace = event.traceparent ? event.traceparent.split("-")[1] : null;
    for (const text of [event.position, event.time, event.type, event.subject, event.actor || ""]) {
      const cell = row.insertCell();
      cell.textContent = String(text);
    }
    const agentId = agentOf(event);
    if (agentId) {  // the subject cell links to the agent it names
      const link = document.createElement("a");
      link.href = `/console/agents/${encodeURIComponent(agentId)}`;
      link.textContent = event.subject;
      row.cells[3].replaceChildren(link);
    }
    const cell = row.insertCell();
    const jaeger = $("#view").dataset.jaeger;
    if (trace && jaeger) {
      const link = document.createElement("a");
      link.href = `${jaeger.replace(/\/$/, "")}/trace/${trace}`;
      link.textContent = "trace";
      link.rel = "noreferrer";
      cell.append(link);
    } else if (trace) cell.textContent = trace.slice(0, 8);
    $("#event-rows").append(row);
  },
  apply(event) {
    if (event) event.preventDefault();
    const form = new FormData($("#event-filter"));
    const list = (name) => String(form.get(name) || "").split(",").map((s) => s.trim()).filter(Boolean);
    const filter = { types: list("types"), agent_ids: list("agent_ids"), actors: list("actors") };
    const from = Number(form.get("from_position") || 0);
    $("#event-rows").replaceChildren();
    live.seen = from;
    live.open(filter, from);
  },
};

// --- actions -------------------------------------------------------------------------------

async function act(button) {  // (not `disabled`: that would take the focus away)
  if (button.getAttribute("aria-disabled") === "true") return;
  button.setAttribute("aria-disabled", "true");
  const response = await api(`/api/v1/agents/${encodeURIComponent(button.dataset.agent)}/${button.dataset.action}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: "{}",
  });
  button.removeAttribute("aria-disabled");
  if (!response.ok) live.status(await errorText(response));
}

async function start() {
  showSignedIn(true);
  $("#namespace").value = session.namespace;
  const main = $("#view");
  if (main.classList.contains("events")) return eventLog.apply();
  live.close();
  const position = await view.load(0);  // first the page, then its feed from where it stood
  live.seen = position;
  live.open(JSON.parse(main.dataset.live || "{}"), position);
}

document.addEventListener("DOMContentLoaded", () => {
  $("#sign-in").addEventListener("submit", signIn);
  $("#sign-out").addEventListener("click", () => signOut("Signed out."));
  $("#namespace-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(NS, $("#namespace").value.trim() || "default");
    start();
  });
  const filter = $("#event-filter");
  if (filter) filter.addEventListener("submit", eventLog.apply);
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (button) act(button);
  });
  if (session.key) start();
  else showSignedIn(false);
});
