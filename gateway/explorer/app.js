// Sluice Explorer: the event log, a live feed, event details with their correlation
// chain, the health rail and saved views, over the gateway's HTTP/JSON API (/v1/...).
// Every call sends the bearer token given at sign-in; the gateway decides what it may see.
// Data is put on the page with textContent only, never as HTML.

const $ = (sel) => document.querySelector(sel);
const TOKEN_KEY = "sluice.explorer.token";
const LIVE_MAX_ROWS = 500;
const HEALTH_EVERY_MS = 30000;

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  filter: null,      // the applied filter: {types, sources, tenantIds, severities, fromTime, toTime, jsonPath}
  cursors: [],       // cursor of each page shown so far ("" for the first)
  nextCursor: "",
  live: null,        // AbortController of the live feed
  healthTimer: null,
  session: new AbortController(),  // aborted on sign-out: no answer for the old token lands
  listSeq: 0,        // only the newest list request's answer is shown
};

// ---- API ----

class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.violations = err.fieldViolations || [];
  }
}

// Answers of a signed-out session never resolve: their callers would put another token's
// data on the page.
const never = () => new Promise(() => {});

async function api(path, { method = "GET", body } = {}) {
  const session = state.session;
  const headers = { Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  // A POST or DELETE without a body still sends "Content-Length: 0" (the gateway needs it).
  const payload = body !== undefined ? JSON.stringify(body) : method === "GET" ? undefined : "";
  let res;
  let json = null;
  try {
    res = await fetch(path, { method, headers, signal: session.signal, body: payload });
    try { json = await res.json(); } catch (_) { json = null; }
  } catch (err) {
    if (session.signal.aborted) return never();
    throw err;
  }
  if (session.signal.aborted) return never();
  if (!res.ok) {
    if (res.status === 401) signOut("The gateway refused the token.");
    throw new ApiError(res.status, json);
  }
  return json || {};
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "" || (Array.isArray(v) && v.length === 0)) continue;
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x)); else q.append(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

function describe(err) {
  if (!(err instanceof ApiError)) return String(err.message || err);
  const parts = [err.message];
  for (const v of err.violations) if (!err.message.includes(v.description)) parts.push(v.description);
  return parts.join(" — ");
}

function showError(err) {
  const p = $("#error");
  if (!err) { p.hidden = true; p.textContent = ""; return; }
  p.textContent = describe(err);
  p.hidden = false;
}

// ---- formatting ----

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v;
    else if (k === "data") Object.entries(v).forEach(([dk, dv]) => { e.dataset[dk] = dv; });
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

const utc = (iso) => (iso ? iso.replace("T", " ").replace(/\.\d+Z$/, "Z") : "");

function ago(iso) {
  if (!iso) return "never";
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (s < 0) return `in ${-s}s`;
  if (s < 90) return `${s}s ago`;
  if (s < 5400) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}

// "1.500s" (protobuf JSON Duration) -> "1.5 s" / "120 ms"
function duration(d) {
  if (!d) return "–";
  const s = parseFloat(d);
  return Math.abs(s) < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(1)} s`;
}

const severityName = (s) => (s || "EVENT_SEVERITY_INFO").replace("EVENT_SEVERITY_", "").toLowerCase();

// The envelope's payload: the one field of the oneof that is set.
const ENVELOPE_FIELDS = new Set(["id", "type", "source", "tenantId", "occurredAt", "correlationId", "causationId",
  "ttlMs", "metadata", "version", "traceparent"]);
function payloadOf(envelope) {
  for (const [k, v] of Object.entries(envelope)) if (!ENVELOPE_FIELDS.has(k) && typeof v === "object") return v;
  return {};
}

function subjectOf(event) {
  const p = payloadOf(event.envelope);
  return p.canonicalKey || p.entityUrn || p.entityKey || p.tableName || p.entityId || p.approvalId || p.jobId || "";
}

// ---- filters ----

const selected = (sel) => Array.from($(sel).selectedOptions).map((o) => o.value);
const fromLocal = (v) => (v ? `${v.length === 16 ? `${v}:00` : v}Z` : "");
const toLocal = (iso) => (iso ? iso.replace(/(\.\d+)?Z$/, "").slice(0, 19) : "");

function readFilter() {
  const f = {
    types: selected("#f-types"),
    sources: selected("#f-sources"),
    tenantIds: $("#f-tenants").value.split(",").map((s) => s.trim()).filter(Boolean),
    severities: selected("#f-severities"),
    jsonPath: $("#f-jsonpath").value.trim(),
    correlationId: $("#f-correlation").value.trim(),
    fromTime: "",
    toTime: "",
  };
  const range = $("#f-range").value;
  const spans = { "15m": 15 * 60e3, "1h": 3600e3, "24h": 24 * 3600e3, "7d": 7 * 24 * 3600e3 };
  if (range in spans) f.fromTime = new Date(Date.now() - spans[range]).toISOString();
  if (range === "custom") { f.fromTime = fromLocal($("#f-from").value); f.toTime = fromLocal($("#f-to").value); }
  return f;
}

function writeFilter(f) {
  const pick = (sel, values) => {
    const want = new Set(values || []);
    for (const o of $(sel).options) o.selected = want.has(o.value);
  };
  pick("#f-types", f.types);
  pick("#f-sources", f.sources);
  pick("#f-severities", (f.severities || []).map(severityName));
  $("#f-tenants").value = (f.tenantIds || []).join(", ");
  $("#f-jsonpath").value = f.jsonPath || "";
  $("#f-correlation").value = f.correlationId || "";
  if (f.fromTime || f.toTime) {
    $("#f-range").value = "custom";
    $("#f-from").value = toLocal(f.fromTime);
    $("#f-to").value = toLocal(f.toTime);
  } else {
    $("#f-range").value = "all";
  }
  $("#custom-range").hidden = $("#f-range").value !== "custom";
}

// ---- the event list ----

function eventRow(event, isNew) {
  const e = event.envelope;
  const sev = severityName(event.severity);
  return el("tr", { class: isNew ? "new" : "", data: { id: e.id, type: e.type, tenant: e.tenantId }, onclick: () => openEvent(e.id, e.tenantId) },
    el("td", { class: "mono" }, utc(e.occurredAt)),
    el("td", {}, e.type),
    el("td", {}, e.source),
    el("td", {}, e.tenantId),
    el("td", { class: `sev sev-${sev}` }, sev),
    el("td", { class: "mono" }, subjectOf(event)));
}

async function loadPage(cursor) {
  showError(null);
  const f = state.filter;
  const seq = ++state.listSeq;
  try {
    const page = await api(`/v1/events${query({ ...f, limit: 50, cursor })}`);
    if (seq !== state.listSeq || state.live) return;  // a newer list, or live mode, took over
    const body = $("#events tbody");
    body.replaceChildren(...(page.events || []).map((ev) => eventRow(ev, false)));
    $("#empty").hidden = (page.events || []).length > 0;
    $("#list-notice").hidden = !page.notice;
    $("#list-notice").textContent = page.notice || "";
    state.nextCursor = page.hasMore ? page.nextCursor : "";
    $("#next-page").disabled = !state.nextCursor;
    $("#page-info").textContent = `page ${state.cursors.length}`;
  } catch (err) {
    if (seq === state.listSeq) showError(err);
  }
}

function applyFilter() {
  state.filter = readFilter();
  state.cursors = [""];
  if (state.live) startLive(); else loadPage("");
}

// ---- live mode ----

function stopLive(message) {
  if (state.live) state.live.abort();
  state.live = null;
  $("#live-status").textContent = message || "";
  $("#live-status").dataset.state = "off";
}

async function startLive() {
  stopLive();
  const abort = new AbortController();
  state.live = abort;
  state.listSeq++;  // a list still on its way is not shown
  const session = state.session;
  session.signal.addEventListener("abort", () => abort.abort());
  const f = state.filter;
  $("#events tbody").replaceChildren();
  $("#empty").hidden = true;
  $("#list-notice").hidden = true;
  $("#next-page").disabled = true;
  $("#page-info").textContent = "";
  const ignored = f.jsonPath || f.fromTime || f.toTime ? " (time range and JSONPath do not apply)" : "";
  $("#live-status").textContent = `connecting${ignored}`;
  $("#live-status").dataset.state = "connecting";
  try {
    const res = await fetch(`/v1/live${query({ types: f.types, sources: f.sources, tenantIds: f.tenantIds, severities: f.severities, correlationId: f.correlationId })}`,
      { headers: { Authorization: `Bearer ${state.token}` }, signal: abort.signal });
    if (!res.ok) {
      let body = null;
      try { body = await res.json(); } catch (_) { /* not JSON */ }
      throw new ApiError(res.status, body);
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        handleSse(buffer.slice(0, end), ignored);
        buffer = buffer.slice(end + 2);
      }
    }
    if (state.live === abort) {
      stopLive("the feed ended");
      $("#live").checked = false;
    }
  } catch (err) {
    if (abort.signal.aborted) return;
    if (state.live === abort) stopLive("");
    $("#live").checked = false;
    showError(err);
  }
}

function handleSse(block, ignored) {
  let event = "message";
  let data = "";
  for (const line of block.split("\n")) {
    if (line === ": live") {
      $("#live-status").textContent = `live${ignored}`;
      $("#live-status").dataset.state = "live";
    } else if (line.startsWith("event: ")) event = line.slice(7);
    else if (line.startsWith("data: ")) data += line.slice(6);
  }
  if (event === "event" && data) {
    const body = $("#events tbody");
    body.prepend(eventRow(JSON.parse(data), true));
    while (body.rows.length > LIVE_MAX_ROWS) body.deleteRow(-1);
  } else if (event === "error" && data) {
    showError(new ApiError(0, JSON.parse(data)));
  }
}

// ---- one event ----

async function openEvent(id, tenantId) {
  try {
    const r = await api(`/v1/events/${encodeURIComponent(id)}${query({ tenantId })}`);
    const ev = r.event;
    const e = ev.envelope;
    $("#detail-title").textContent = e.type;
    $("#detail-meta").textContent =
      `${e.id} · ${e.source} · tenant ${e.tenantId} · occurred ${utc(e.occurredAt)} · received ${utc(ev.receivedAt)} · ${severityName(ev.severity)}`;
    $("#detail-links").replaceChildren(...(ev.links || []).map((l) => el("li", { class: "mono" }, `${l.kind}: ${l.id}`)));
    $("#detail-envelope").textContent = JSON.stringify(e, null, 2);
    const chain = r.chain || [];
    const t0 = chain.length ? Date.parse(chain[0].envelope.occurredAt) : 0;
    $("#chain").replaceChildren(...chain.map((c) => {
      const ce = c.envelope;
      const offset = ((Date.parse(ce.occurredAt) - t0) / 1000).toFixed(3);
      return el("li", { class: ce.id === e.id ? "current" : "", data: { id: ce.id, type: ce.type }, onclick: () => openEvent(ce.id, ce.tenantId) },
        el("span", { class: "offset mono" }, `+${offset}s`), `${ce.type} `, el("span", { class: "muted" }, ce.source));
    }));
    $("#chain-note").textContent = !e.correlationId ? "This event has no correlation id."
      : `correlation ${e.correlationId}: ${chain.length} event(s)${r.chainTruncated ? ", more not shown" : ""}`;
    $("#detail").hidden = false;
  } catch (err) {
    showError(err);
  }
}

// ---- health rail ----

async function refreshHealth() {
  try {
    const h = await api("/v1/health");
    $("#health-error").hidden = true;
    $("#health-updated").textContent = `measured ${utc(h.measuredAt)} by ${h.replica || "?"}`;
    const sources = h.sources || [];
    const now = Date.now();
    const paused = sources.filter((s) => s.pausedUntil && Date.parse(s.pausedUntil) > now);
    const limited = sources.filter((s) => !paused.includes(s) && Number(s.rateLimitedTotal || 0) > 0);
    $("#health-paused").replaceChildren(
      ...paused.map((s) => el("li", { class: "paused", data: { source: s.source, tenant: s.tenantId, state: "paused" } },
        `${s.tenantId}/${s.source} paused until ${utc(s.pausedUntil)}`)),
      ...limited.map((s) => el("li", { data: { source: s.source, tenant: s.tenantId, state: "rate-limited" } },
        `${s.tenantId}/${s.source}: ${s.rateLimitedTotal} rate-limited`)));
    if (!paused.length && !limited.length) $("#health-paused").append(el("li", { class: "muted" }, "none"));
    $("#health-sources tbody").replaceChildren(...sources.map((s) => el("tr", { data: { source: s.source, tenant: s.tenantId } },
      el("td", {}, `${s.tenantId}/${s.source}`),
      el("td", {}, (s.publishRatePerS || 0).toFixed(2)),
      el("td", {}, ago(s.lastSeen)),
      el("td", {}, `${duration(s.lagAvg)} / ${duration(s.lagLatest)} / ${duration(s.lagMax)}`))));
    const groups = new Map();
    for (const l of h.consumerLag || []) groups.set(l.group, (groups.get(l.group) || 0) + Number(l.lag || 0));
    $("#health-lag").replaceChildren(...[...groups].map(([g, lag]) => el("li", { data: { group: g } }, `${g}: ${lag}`)));
    if (!groups.size) $("#health-lag").append(el("li", { class: "muted" }, "shown to tokens of every tenant"));
    list("#health-outbox", h.outbox, (o) => `${o.tenantId}: ${o.unsent} unsent, oldest ${ago(o.oldestUnsent)}${Number(o.retrying || 0) ? `, ${o.retrying} retrying` : ""}`);
    list("#health-jobs", h.profileJobs, (j) => `${j.tenantId}: ${j.pending || 0} pending, ${j.running || 0} running, ${j.waitingRetry || 0} waiting for retry${j.nextRetry ? ` (next ${utc(j.nextRetry)})` : ""}`);
    list("#health-triggers", h.triggers, (t) => `${t.tenantId}: ${t.active || 0} active, ${t.paused || 0} paused, ${t.autoPaused || 0} auto-paused; ${t.pending || 0} pending (${t.retrying || 0} retrying); last hour ${t.deliveredLastHour || 0} delivered, ${t.failedLastHour || 0} failed`);
    list("#health-dead", h.deadLetters, (d) => `${d.topic} ${d.tenantId || "(no tenant)"}: ${d.count}, newest ${ago(d.newest)}`);
  } catch (err) {
    $("#health-error").textContent = describe(err);
    $("#health-error").hidden = false;
  }
}

function list(sel, items, text) {
  const ul = $(sel);
  ul.replaceChildren(...(items || []).map((i) => el("li", {}, text(i))));
  if (!(items || []).length) ul.append(el("li", { class: "muted" }, "none"));
}

// ---- saved views ----

function viewTenant() {
  const t = (state.filter || readFilter()).tenantIds;
  return t.length === 1 ? t[0] : "";
}

async function loadViews() {
  try {
    const r = await api(`/v1/views${query({ tenantId: viewTenant() })}`);
    const views = r.views || [];
    $("#views").replaceChildren(...views.map(viewItem));
    if (!views.length) $("#views").append(el("li", { class: "muted" }, "No saved views."));
  } catch (err) {
    $("#views").replaceChildren(el("li", { class: "error" }, describe(err)));
  }
}

function viewItem(v) {
  const recent = v.recent || {};
  const rate = (recent.eventsPerMinute || 0).toFixed(1);
  const errors = ((recent.errorRatio || 0) * 100).toFixed(1);
  const shared = v.visibility === "SAVED_VIEW_VISIBILITY_SHARED";
  return el("li", { data: { id: v.id, name: v.name } },
    el("div", {}, el("span", { class: "name" }, v.name), shared ? el("span", { class: "badge" }, "shared") : null),
    v.description ? el("div", { class: "muted" }, v.description) : null,
    el("div", { class: "muted stats" }, `${rate}/min · ${errors}% errors (15 min) · used ${v.useCount || 0}× · by ${v.owner}`),
    el("div", { class: "actions" },
      el("button", { type: "button", class: "apply", onclick: () => applyView(v) }, "Apply"),
      el("button", { type: "button", class: "delete", onclick: () => deleteView(v) }, "Delete")));
}

async function applyView(v) {
  try {
    const r = await api(`/v1/views/${encodeURIComponent(v.id)}/use${query({ tenantId: v.tenantId })}`, { method: "POST" });
    const f = { ...(r.view.filter || {}) };
    f.tenantIds = [r.view.tenantId];
    writeFilter(f);
    applyFilter();
    loadViews();
  } catch (err) {
    showError(err);
  }
}

async function deleteView(v) {
  try {
    await api(`/v1/views/${encodeURIComponent(v.id)}${query({ tenantId: v.tenantId })}`, { method: "DELETE" });
    loadViews();
  } catch (err) {
    showError(err);
  }
}

async function saveView(event) {
  event.preventDefault();
  const f = readFilter();
  const filter = { types: f.types, sources: f.sources, severities: f.severities, jsonPath: f.jsonPath || undefined,
    correlationId: f.correlationId || undefined };
  if ($("#f-range").value === "custom") { filter.fromTime = f.fromTime || undefined; filter.toTime = f.toTime || undefined; }
  try {
    await api("/v1/views", {
      method: "POST",
      body: {
        tenantId: f.tenantIds.length === 1 ? f.tenantIds[0] : undefined,
        name: $("#view-name").value,
        description: $("#view-desc").value,
        filter,
        visibility: $("#view-shared").checked ? "SAVED_VIEW_VISIBILITY_SHARED" : "SAVED_VIEW_VISIBILITY_PRIVATE",
      },
    });
    $("#view-name").value = "";
    $("#view-desc").value = "";
    showError(null);
    loadViews();
  } catch (err) {
    showError(err);
  }
}

// ---- sign-in and start ----

function signOut(message) {
  stopLive();
  $("#live").checked = false;
  clearInterval(state.healthTimer);
  state.session.abort();
  state.session = new AbortController();
  state.listSeq++;
  state.filter = null;
  state.cursors = [];
  state.nextCursor = "";
  writeFilter({});
  $("#f-range").value = "24h";
  $("#custom-range").hidden = true;
  $("#health-error").hidden = true;
  $("#empty").hidden = true;
  $("#page-info").textContent = "";
  state.token = "";
  sessionStorage.removeItem(TOKEN_KEY);
  $("#app").hidden = true;
  $("#detail").hidden = true;
  // Nothing of this token's tenants stays on the page for the next one.
  for (const sel of ["#events tbody", "#views", "#health-sources tbody", "#health-paused", "#health-lag",
    "#health-outbox", "#health-jobs", "#health-dead", "#chain", "#detail-links"]) $(sel).replaceChildren();
  for (const sel of ["#detail-envelope", "#detail-title", "#detail-meta", "#health-updated", "#list-notice"]) $(sel).textContent = "";
  showError(null);
  $("#logout").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
}

async function start() {
  let catalog;
  try {
    catalog = await api("/v1/catalog");
  } catch (err) {
    if (err.status !== 401) signOut(describe(err));
    return;
  }
  const fill = (sel, values) => $(sel).replaceChildren(...values.map((v) => el("option", { value: v }, v)));
  fill("#f-types", (catalog.eventTypes || []).map((t) => t.type).sort());
  fill("#f-sources", (catalog.sources || []).map((s) => s.name).sort());
  $("#login").hidden = true;
  $("#app").hidden = false;
  $("#logout").hidden = false;
  applyFilter();
  refreshHealth();
  loadViews();
  clearInterval(state.healthTimer);
  state.healthTimer = setInterval(refreshHealth, HEALTH_EVERY_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  $("#login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    state.token = $("#token").value.trim();
    sessionStorage.setItem(TOKEN_KEY, state.token);
    $("#token").value = "";
    start();
  });
  $("#logout").addEventListener("click", () => signOut(""));
  $("#filters").addEventListener("submit", (e) => { e.preventDefault(); applyFilter(); loadViews(); });
  $("#reset").addEventListener("click", () => { writeFilter({}); $("#f-range").value = "24h"; $("#custom-range").hidden = true; applyFilter(); });
  $("#f-range").addEventListener("change", () => { $("#custom-range").hidden = $("#f-range").value !== "custom"; });
  $("#first-page").addEventListener("click", () => { state.cursors = [""]; loadPage(""); });
  $("#next-page").addEventListener("click", () => {
    if (!state.nextCursor) return;
    state.cursors.push(state.nextCursor);
    loadPage(state.nextCursor);
  });
  $("#live").addEventListener("change", () => {
    if ($("#live").checked) startLive();
    else { stopLive(); state.cursors = [""]; loadPage(""); }
  });
  $("#detail-close").addEventListener("click", () => { $("#detail").hidden = true; });
  $("#health-refresh").addEventListener("click", refreshHealth);
  $("#save-view").addEventListener("submit", saveView);
  if (state.token) start(); else signOut("");
});
