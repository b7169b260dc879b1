// Nærvagt alert console: the live alerts of the signed-in clinician's organisation, the actions
// on them, and a patient view with vital-sign charts and alert history.
"use strict";

const SEVERITY = {
  high: { rank: 3, label: "High" },
  medium: { rank: 2, label: "Medium" },
  "low-medium": { rank: 1, label: "Low-medium" },
  low: { rank: 0, label: "Low" },
};
const TZ = "Europe/Copenhagen";
const TOKEN_KEY = "naervagt.token";
// Changes can reach the page slightly out of seq order (concurrent commits, partitions), so a
// reconnect asks again for everything after the last seq that is at least this old.
const RESYNC_MARGIN_MS = 30000;
const CUE_CHANGES = new Set(["raised", "worsened", "escalated"]);
const SNOOZE_CHOICES = [["15 min", 15], ["30 min", 30], ["1 hour", 60], ["2 hours", 120], ["4 hours", 240]];
// The video service's default specialties; one it does not take comes back as a field error.
const SPECIALTIES = [
  ["pulmonology", "Pulmonology (lungemedicin)"],
  ["cardiology", "Cardiology (kardiologi)"],
  ["geriatrics", "Geriatrics (geriatri)"],
  ["infectious_disease", "Infectious disease (infektionsmedicin)"],
];
const URGENCIES = [["acute", "Acute"], ["today", "Today"], ["routine", "Routine"]];
const NEWS2_LABEL = {
  respiratory_rate: "RR", spo2: "SpO2", air_or_oxygen: "O2", systolic_bp: "SBP",
  heart_rate: "HR", consciousness: "ACVPU", temperature: "Temp",
};
const NEWS2_ORDER = Object.keys(NEWS2_LABEL);  // the order of the NEWS2 chart
const UNIT = { "/min": "/min", "%": "%", "mm[Hg]": "mmHg", Cel: "°C", kg: "kg", "mmol/L": "mmol/L" };
const CHARTS = [
  { id: "heart_rate", title: "Heart rate", series: ["heart_rate"] },
  { id: "spo2", title: "SpO2", series: ["spo2"] },
  { id: "respiratory_rate", title: "Respiratory rate", series: ["respiratory_rate"] },
  { id: "blood_pressure", title: "Blood pressure", series: ["systolic_bp", "diastolic_bp"] },
  { id: "temperature", title: "Temperature", series: ["temperature"] },
  { id: "weight", title: "Weight", series: ["weight"] },
  { id: "glucose", title: "Glucose", series: ["glucose"], onlyWhenMeasured: true },
];
const SERIES_LABEL = { systolic_bp: "Systolic", diastolic_bp: "Diastolic" };
const SERIES_COLOUR = ["#14324a", "#7b1fa2"];

const state = {
  alerts: new Map(),     // alert id -> {seq, change, alert}; resolved ones stay as tombstones
  socket: null,
  retryMs: 500,
  retryTimer: null,
  safeSeq: null,         // every change up to this seq has reached the page
  recent: [],            // [receivedAtMs, seq] of changes younger than RESYNC_MARGIN_MS
  fullSync: null,        // alert ids in a full snapshot while one is arriving
  synced: false,         // the current connection has delivered its snapshot
  everSynced: false,
  lastSince: null,       // the since of the latest connection (null: full snapshot)
  videoUrl: null,
  videoAvailable: false,
  signedOut: false,
  cues: 0,
  me: null,              // {subject, role, org} read from the token, for display and "assign to me"
  clinicians: null,      // the organisation's clinicians an alert can be assigned to
};
window.consoleState = state;

const $ = (id) => document.getElementById(id);
const token = () => sessionStorage.getItem(TOKEN_KEY);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

// ---- times (always Europe/Copenhagen) ----------------------------------------------------------

const dayFormat = new Intl.DateTimeFormat("en-GB", { timeZone: TZ, day: "numeric", month: "short" });
const clockFormat = new Intl.DateTimeFormat("en-GB", { timeZone: TZ, hour: "2-digit", minute: "2-digit" });

// The token's claims, read only to label the page; the server verifies every request.
function claims() {
  try {
    const part = token().split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part));
  } catch (e) { return null; }
}

function formatTime(iso) {
  if (!iso) return "–";
  const at = new Date(iso);
  const clock = clockFormat.format(at);
  return dayFormat.format(at) === dayFormat.format(new Date()) ? clock : `${dayFormat.format(at)} ${clock}`;
}

function formatAge(iso) {
  const minutes = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 60000));
  if (minutes < 1) return "just now";
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ${minutes % 60} min ago`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h ago`;
}

// ---- HTTP ---------------------------------------------------------------------------------------

async function api(path, options = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + token() }, options.headers || {});
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401) signOut("Your sign-in has expired; please sign in again.");
  return response;
}

async function postJson(url, body, extraHeaders = {}) {
  const headers = Object.assign({ "Content-Type": "application/json" }, extraHeaders);
  return fetch(url, { method: "POST", headers, body: JSON.stringify(body === undefined ? {} : body) });
}

async function problem(response) {
  let text = `${response.status} ${response.statusText}`.trim();
  try {
    const body = await response.json();
    if (body && body.message) {
      text = `${body.message} (${response.status})`;
      if (Array.isArray(body.errors) && body.errors.length) {
        text += ": " + body.errors.map((e) => `${e.field}: ${e.message}`).join("; ");
      }
    }
  } catch (e) { /* not JSON: the status line says enough */ }
  return "Not done: " + text;
}

// ---- live connection ----------------------------------------------------------------------------

function setStatus(text, cls) { const s = $("status"); s.textContent = text; s.className = cls || ""; }

function noteSeq(seq) { if (seq !== null && seq !== undefined) state.recent.push([Date.now(), seq]); }

function settle() {
  const cutoff = Date.now() - RESYNC_MARGIN_MS;
  while (state.recent.length && state.recent[0][0] <= cutoff) {
    const seq = state.recent.shift()[1];
    state.safeSeq = state.safeSeq === null ? seq : Math.max(state.safeSeq, seq);
  }
}

function scheduleReconnect() {
  if (state.signedOut) return;
  clearTimeout(state.retryTimer);
  state.retryTimer = setTimeout(connect, state.retryMs);
  state.retryMs = Math.min(state.retryMs * 2, 10000);
}

async function connect() {
  clearTimeout(state.retryTimer);
  if (!token() || state.signedOut) return;
  let response;
  try {
    response = await api("/v1/console/tickets", { method: "POST" });
  } catch (e) {
    setStatus("alerts service unreachable; retrying", "down");
    return scheduleReconnect();
  }
  if (response.status === 401) return;
  if (response.status === 403) return signOut(await problem(response));
  if (!response.ok) { setStatus("reconnecting…", "down"); return scheduleReconnect(); }
  const { ticket } = await response.json();
  settle();
  const since = state.safeSeq;
  state.lastSince = since;
  state.fullSync = since === null ? new Set() : null;
  state.synced = false;
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const query = `ticket=${encodeURIComponent(ticket)}` + (since === null ? "" : `&since=${since}`);
  const socket = new WebSocket(`${proto}//${location.host}/v1/console/ws?${query}`);
  state.socket = socket;
  socket.onmessage = (event) => { if (state.socket === socket) receive(JSON.parse(event.data)); };
  socket.onclose = () => {
    if (state.socket !== socket) return;
    state.socket = null;
    if (state.signedOut) return;
    setStatus("reconnecting…", "down");
    scheduleReconnect();
  };
}

function receive(message) {
  if (message.type === "hello") {
    $("who").textContent = [state.me && state.me.sub, message.role, message.org_id].filter(Boolean).join(" · ");
  } else if (message.type === "alert") {
    noteSeq(message.seq);
    if (state.fullSync) state.fullSync.add(message.alert.id);
    const fresh = apply(message);
    if (fresh && state.everSynced) maybeCue(message);
    scheduleRender();
  } else if (message.type === "synced") {
    noteSeq(message.seq);
    if (state.fullSync) retireMissing(state.fullSync);
    state.fullSync = null;
    state.synced = true;
    state.everSynced = true;
    state.retryMs = 500;
    setStatus("live", "live");
    render();
  }
}

function apply(message) {
  const known = state.alerts.get(message.alert.id);
  if (known && known.seq >= message.seq) return false;  // never show a change twice
  state.alerts.set(message.alert.id, { seq: message.seq, change: message.change, alert: message.alert });
  return true;
}

// A full snapshot lists every active alert: one the page shows that is not in it was resolved
// while the page was away.
function retireMissing(seen) {
  for (const [id, entry] of state.alerts) {
    if (!seen.has(id) && entry.alert.status !== "resolved") {
      state.alerts.set(id, { seq: entry.seq, change: "resolved", alert: Object.assign({}, entry.alert, { status: "resolved" }) });
    }
  }
}

// ---- audible cue for high alerts (WebAudio may start only after a user interaction) -------------

const sound = { ctx: null, on: true };

function unlockAudio() {
  try {
    if (!sound.ctx) sound.ctx = new (window.AudioContext || window.webkitAudioContext)();
    if (sound.ctx.state === "suspended") sound.ctx.resume().then(updateSoundButton, () => {});
  } catch (e) { sound.ctx = null; }
  updateSoundButton();
}

function updateSoundButton() {
  const button = $("sound");
  const running = sound.ctx && sound.ctx.state === "running";
  button.setAttribute("aria-pressed", String(Boolean(running && sound.on)));
  button.textContent = !running ? "Sound: click anywhere to enable" : sound.on ? "Sound: on" : "Sound: off";
}

function maybeCue(message) {
  const alert = message.alert;
  if (alert.severity !== "high" || alert.status !== "open" || !CUE_CHANGES.has(message.change)) return;
  if (!sound.on || !sound.ctx || sound.ctx.state !== "running") return;
  const start = sound.ctx.currentTime + 0.01;
  [880, 660, 880].forEach((frequency, i) => {
    const osc = sound.ctx.createOscillator();
    const gain = sound.ctx.createGain();
    const t = start + i * 0.22;
    osc.frequency.value = frequency;
    gain.gain.setValueAtTime(0.0001, t);
    gain.gain.exponentialRampToValueAtTime(0.3, t + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.18);
    osc.connect(gain).connect(sound.ctx.destination);
    osc.start(t);
    osc.stop(t + 0.2);
  });
  state.cues += 1;
}

// ---- the alert board -----------------------------------------------------------------------------

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  setTimeout(() => { renderQueued = false; render(); }, 0);
}

function activeAlerts() {
  return [...state.alerts.values()]
    .filter((e) => e.alert.status !== "resolved")
    .sort((a, b) => (SEVERITY[b.alert.severity].rank - SEVERITY[a.alert.severity].rank) ||
                    (new Date(a.alert.opened_at) - new Date(b.alert.opened_at)));
}

// Rows are kept and updated in place, so an open form or a focused button survives live updates.
function render() {
  const table = $("alerts");
  const wanted = activeAlerts();
  const ids = new Set(wanted.map((e) => e.alert.id));
  const groups = new Map();
  for (const group of [...table.tBodies]) {
    if (ids.has(group.dataset.alertId)) groups.set(group.dataset.alertId, group);
    else group.remove();
  }
  let previous = null;
  for (const entry of wanted) {
    let group = groups.get(entry.alert.id);
    if (!group) group = newGroup(entry.alert.id);
    if (group.dataset.seq !== String(entry.seq) || group.dataset.video !== String(state.videoAvailable)) {
      fillRow(group, entry);
    }
    const expected = previous ? previous.nextElementSibling : table.tHead.nextElementSibling;
    if (expected !== group) table.insertBefore(group, expected);
    previous = group;
  }
  const high = wanted.filter((e) => e.alert.severity === "high" && e.alert.status === "open").length;
  $("empty").hidden = wanted.length > 0;
  $("count").textContent = `${wanted.length} active alert${wanted.length === 1 ? "" : "s"}` +
    (high ? `, ${high} high and not yet acknowledged` : "");
  document.title = (high ? `(${high} high) ` : "") + "Nærvagt · alert console";
}

function newGroup(alertId) {
  const group = el("tbody", { class: "alert" });
  group.dataset.alertId = alertId;
  const main = el("tr", { class: "alert-row" });
  const panel = el("tr", { class: "panel", hidden: true },
    el("td", { colspan: "7" }, el("div", { class: "form" }), el("div", { class: "result", role: "status", "aria-live": "polite" })));
  group.append(main, panel);
  return group;
}

function severityBadge(severity) {
  return el("span", { class: "sev " + severity, text: (SEVERITY[severity] || { label: severity }).label });
}

function news2Cell(news2) {
  if (!news2) return el("span", { text: "–" });
  const parts = Object.entries(news2.components || {})
    .filter(([, points]) => points > 0)
    .sort((a, b) => (b[1] - a[1]) || (NEWS2_ORDER.indexOf(a[0]) - NEWS2_ORDER.indexOf(b[0])))
    .map(([name, points]) => `${NEWS2_LABEL[name] || name} ${points}`);
  return el("div", {},
    el("strong", { text: String(news2.total) }),
    parts.length ? el("div", { class: "components", text: parts.join(" · ") }) : null);
}

function modelLine(model) {
  if (!model) return null;
  const features = (model.top_features || []).slice(0, 3)
    .map(([name, weight]) => `${name.replaceAll("_", " ")} (${weight >= 0 ? "+" : ""}${Number(weight).toFixed(2)})`);
  return el("div", { class: "model" },
    `Model ${model.version}: ${Math.round(model.probability * 100)} % risk of deterioration` +
    (features.length ? `; driven by ${features.join(", ")}` : ""));
}

const REASONS_SHOWN = 4;
const HISTORY_REASONS_SHOWN = 8;

// The first reasons say what scored; the rest (ranges, baseline, trends, model) fold away so a
// row stays a few lines tall on a busy board.
function reasonList(reasons, shown) {
  const items = (reasons || []).map((r) => el("li", { text: r }));
  if (items.length <= shown + 1) return el("ul", { class: "reasons" }, ...items);
  const rest = items.slice(shown);
  return el("div", {}, el("ul", { class: "reasons" }, ...items.slice(0, shown)),
    el("details", { class: "more" }, el("summary", { text: `${rest.length} more reasons` }),
      el("ul", { class: "reasons" }, ...rest)));
}

function mentionsModel(reasons) { return (reasons || []).some((r) => /\bmodel\b/i.test(r)); }

function whyCell(alert) {
  const reasons = reasonList(alert.reasons, REASONS_SHOWN);
  const extras = [];
  if (alert.kind && alert.kind !== "news2") extras.push(`kind: ${alert.kind.replaceAll("_", " ")}`);
  const assignee = alert.assigned_name || alert.assigned_to || alert.assignee;
  if (assignee) extras.push(`assigned to ${assignee}`);
  if (alert.snoozed_until) extras.push(`snoozed until ${formatTime(alert.snoozed_until)}`);
  const notes = Array.isArray(alert.notes) ? alert.notes : alert.note ? [alert.note] : [];
  const lastNote = notes.length ? notes[notes.length - 1] : null;
  if (lastNote) extras.push(`note: ${typeof lastNote === "string" ? lastNote : lastNote.text}`);
  return el("div", {}, reasons, mentionsModel(alert.reasons) ? null : modelLine(alert.model),
    extras.length ? el("div", { class: "small", text: extras.join(" · ") }) : null);
}

function fillRow(group, entry) {
  const { alert } = entry;
  group.dataset.seq = String(entry.seq);
  group.dataset.video = String(state.videoAvailable);
  const row = group.rows[0];
  row.className = `alert-row ${alert.severity} ${alert.status}`;
  row.dataset.alertId = alert.id;
  row.dataset.patientId = alert.patient_id;
  row.dataset.status = alert.status;
  const patient = el("button", { class: "link", type: "button", text: alert.patient_id,
    title: "Open the patient view", onclick: () => openPatient(alert.patient_id) });
  const opened = el("div", {}, formatTime(alert.opened_at),
    el("div", { class: "small age", "data-opened": alert.opened_at, text: formatAge(alert.opened_at) }));
  const status = el("div", {}, el("div", { class: "status-text", text: alert.status }),
    entry.change && entry.change !== "raised"
      ? el("div", { class: "small last-change", text: `${entry.change} ${formatTime(alert.updated_at)}` }) : null);
  const actions = el("div", { class: "actions" });
  if (alert.status === "open") actions.append(actionButton(group, "Acknowledge", () => simpleAction(group, alert, "acknowledge", "Acknowledged.")));
  actions.append(actionButton(group, "Resolve", () => simpleAction(group, alert, "resolve", "Resolved.")));
  actions.append(actionButton(group, "Snooze…", () => openForm(group, snoozeForm(group, alert))));
  actions.append(actionButton(group, "Assign…", () => openForm(group, assignForm(group, alert))));
  actions.append(actionButton(group, "Note…", () => openForm(group, noteForm(group, alert))));
  if (state.videoAvailable) {
    actions.append(actionButton(group, "Request specialist…", () => openForm(group, specialistForm(group, alert))));
  }
  const cells = [severityBadge(alert.severity), patient, news2Cell(alert.news2), whyCell(alert), opened, status, actions];
  // Keep a keyboard user's place when the row changes under them (e.g. after Acknowledge).
  const focused = row.contains(document.activeElement) ? document.activeElement.textContent : null;
  row.replaceChildren(...cells.map((content) => el("td", {}, content)));
  if (focused !== null) {
    const buttons = [...row.querySelectorAll("button")];
    (buttons.find((b) => b.textContent === focused) || actions.firstElementChild || patient).focus();
  }
}

function actionButton(group, label, onclick) {
  return el("button", { class: "act", type: "button", text: label, onclick });
}

const RESULT_SHOWN_MS = 10000;

// A refusal stays until the next action; a confirmation clears itself after a while.
function showResult(group, text, ok) {
  const panel = group.rows[1];
  const result = panel.querySelector(".result");
  result.textContent = text;
  result.className = "result " + (ok ? "ok" : "error");
  panel.hidden = false;
  if (!ok) return;
  setTimeout(() => {
    if (result.textContent !== text) return;
    result.textContent = "";
    result.className = "result";
    if (!panel.querySelector(".form").childElementCount) panel.hidden = true;
  }, RESULT_SHOWN_MS);
}

async function alertAction(group, alert, action, body, doneText) {
  try {
    const response = await api(`/v1/alerts/${encodeURIComponent(alert.id)}/${action}`,
      { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) });
    if (response.ok) { showResult(group, doneText, true); return true; }
    showResult(group, await problem(response), false);
  } catch (e) {
    showResult(group, "Not done: the alerts service did not answer; try again.", false);
  }
  return false;
}

async function simpleAction(group, alert, action, doneText) {
  const buttons = group.querySelectorAll("button.act");
  buttons.forEach((b) => { b.disabled = true; });
  await alertAction(group, alert, action, undefined, doneText);
  buttons.forEach((b) => { b.disabled = false; });
}

function closeForm(group, returnFocus) {
  const panel = group.rows[1];
  panel.querySelector(".form").replaceChildren();
  if (!panel.querySelector(".result").textContent) panel.hidden = true;
  if (returnFocus) returnFocus.focus();
}

function openForm(group, form) {
  const panel = group.rows[1];
  const opener = document.activeElement;
  panel.querySelector(".result").textContent = "";
  panel.querySelector(".form").replaceChildren(form);
  panel.hidden = false;
  form.addEventListener("keydown", (event) => { if (event.key === "Escape") closeForm(group, opener); });
  const first = form.querySelector("input, select, textarea");
  if (first) first.focus();
}

function inlineForm(group, fields, submitLabel, onsubmit) {
  const submit = el("button", { type: "submit", text: submitLabel });
  const form = el("form", { class: "inline" }, ...fields, submit,
    el("button", { type: "button", text: "Cancel", onclick: () => closeForm(group) }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    const done = await onsubmit();
    submit.disabled = false;
    if (done) closeForm(group);
  });
  return form;
}

function snoozeForm(group, alert) {
  const select = el("select", { name: "for" }, ...SNOOZE_CHOICES.map(([label, minutes]) => el("option", { value: String(minutes), text: label })));
  return inlineForm(group, [el("label", {}, "Snooze for", select)], "Snooze", () => {
    const until = new Date(Date.now() + Number(select.value) * 60000);
    return alertAction(group, alert, "snooze", { until: until.toISOString() }, `Snoozed until ${formatTime(until.toISOString())}.`);
  });
}

async function loadClinicians() {
  if (state.clinicians !== null || !state.me) return;
  try {
    const response = await api(`/v1/care/organisations/${encodeURIComponent(state.me.org)}/clinicians`);
    state.clinicians = response.ok ? (await response.json()).clinicians || [] : [];
  } catch (e) { state.clinicians = []; }
}

function assignForm(group, alert) {
  const select = el("select", { name: "clinician" });
  const fill = () => {
    const mine = state.me ? [el("option", { value: state.me.sub, text: `Me (${state.me.sub})` })] : [];
    const others = (state.clinicians || []).filter((c) => !state.me || c.clinician_id !== state.me.sub)
      .map((c) => el("option", { value: c.clinician_id, text: `${c.name} (${c.role})` }));
    select.replaceChildren(...mine, ...others);
  };
  fill();
  loadClinicians().then(fill);
  return inlineForm(group, [el("label", {}, "Assign to", select)], "Assign", () => {
    const chosen = select.selectedOptions[0];
    if (!chosen) return false;
    // The lifecycle API names the assignee by clinician id.
    return alertAction(group, alert, "assign", { clinician_id: chosen.value, assignee: chosen.value },
      `Assigned to ${chosen.textContent}.`);
  });
}

function noteForm(group, alert) {
  const text = el("textarea", { name: "text", required: true, rows: "2", maxlength: "2000" });
  return inlineForm(group, [el("label", {}, "Note", text)], "Add note",
    () => alertAction(group, alert, "note", { text: text.value.trim() }, "Note added."));
}

function specialistForm(group, alert) {
  const specialty = el("select", { name: "specialty" }, ...SPECIALTIES.map(([value, label]) => el("option", { value, text: label })));
  const suggested = alert.severity === "high" ? "acute" : alert.severity === "medium" ? "today" : "routine";
  const urgency = el("select", { name: "urgency" }, ...URGENCIES.map(([value, label]) => el("option", { value, text: label, selected: value === suggested })));
  const reason = el("textarea", { name: "reason", rows: "2", maxlength: "2000", required: true, placeholder: "what you would like advice on" });
  const fields = [el("label", {}, "Specialty", specialty), el("label", {}, "Urgency", urgency), el("label", {}, "Question", reason)];
  return inlineForm(group, fields, "Send request", async () => {
    const body = { patient_id: alert.patient_id, alert_id: alert.id, specialty: specialty.value, urgency: urgency.value, reason: reason.value.trim() };
    let response;
    try {
      response = await postJson(`${state.videoUrl}/v1/consults`, body, { Authorization: "Bearer " + token() });
    } catch (e) {
      showResult(group, "Not done: the video service did not answer.", false);
      probeVideo();
      return false;
    }
    if (!response.ok) { showResult(group, await problem(response), false); return false; }
    const consult = await response.json().catch(() => ({}));
    const id = consult.consult_id || consult.id;
    showResult(group, `Specialist requested${id ? `: consult ${id}` : ""}${consult.status ? ` (${consult.status})` : ""}.`, true);
    const link = consult.join_url || consult.room_url;
    if (link) group.rows[1].querySelector(".result").append(" ", el("a", { href: link, target: "_blank", rel: "noopener", text: "Open the video room" }));
    return true;
  });
}

// ---- the video service: the specialist button shows only while it answers -----------------------

async function probeVideo() {
  if (state.videoUrl === null) {
    try {
      const response = await fetch("/v1/console/config");
      if (response.ok) state.videoUrl = (await response.json()).video_url || null;
    } catch (e) { /* tried again at the next probe */ }
  }
  let available = false;
  if (state.videoUrl) {
    try {
      // An opaque answer is enough to know the service is up.
      await fetch(`${state.videoUrl}/healthz`, { mode: "no-cors", cache: "no-store", signal: AbortSignal.timeout(3000) });
      available = true;
    } catch (e) { available = false; }
  }
  if (available !== state.videoAvailable) { state.videoAvailable = available; render(); }
  document.body.dataset.video = available ? "available" : "unavailable";
}

// ---- patient view ---------------------------------------------------------------------------------

let patientRequest = 0;
let charts = [];

function openPatient(patientId) { location.hash = "#patient/" + encodeURIComponent(patientId); }

function route() {
  const match = /^#patient\/(.+)$/.exec(location.hash);
  if (match && token()) return showPatient(decodeURIComponent(match[1]));
  $("patient").hidden = true;
  for (const chart of charts) chart.destroy();
  charts = [];
  if (token()) $("board").hidden = false;
}

async function showPatient(patientId) {
  const request = ++patientRequest;
  $("board").hidden = true;
  $("patient").hidden = false;
  $("pt-title").textContent = `Patient ${patientId}`;
  $("pt-meta").textContent = "";
  $("pt-status").textContent = "Loading…";
  $("back").focus();
  let response;
  try {
    response = await api(`/v1/patients/${encodeURIComponent(patientId)}/vitals?days=${$("days").value}`);
  } catch (e) {
    if (request === patientRequest) $("pt-status").textContent = "The alerts service did not answer; try again.";
    return;
  }
  if (request !== patientRequest) return;
  for (const chart of charts) chart.destroy();
  charts = [];
  if (!response.ok) {
    $("pt-status").textContent = await problem(response);
    $("charts").replaceChildren();
    $("history").tBodies[0].replaceChildren();
    return;
  }
  const data = await response.json();
  const p = data.patient;
  $("pt-meta").textContent = [p.condition ? `condition: ${p.condition.replaceAll("_", " ")}` : "no condition recorded",
    p.spo2_scale === 2 ? "SpO2 scale 2 (target 88–92 %)" : null].filter(Boolean).join(" · ");
  $("pt-status").textContent = `Last ${data.days} day${data.days === 1 ? "" : "s"}; reference ranges: ${p.condition_group} defaults.` +
    (window.uPlot ? "" : " Charts are unavailable (the chart library is not built); readings are listed below each heading.");
  renderCharts(data);
  renderHistory(data.alerts);
}

function limitText(limits, unit) {
  if (!limits) return "No absolute reference range; watch the trend.";
  const u = unit === "%" || unit === "°C" ? unit : ` ${unit}`;
  const parts = [];
  if (limits.yellow_low !== null) parts.push(`yellow below ${limits.yellow_low}${u}`);
  if (limits.red_low !== null) parts.push(`red below ${limits.red_low}${u}`);
  if (limits.yellow_high !== null) parts.push(`yellow above ${limits.yellow_high}${u}`);
  if (limits.red_high !== null) parts.push(`red above ${limits.red_high}${u}`);
  return parts.length ? "Reference: " + parts.join(", ") : "No absolute reference range.";
}

function renderCharts(data) {
  const container = $("charts");
  container.replaceChildren();
  for (const spec of CHARTS) {
    const series = spec.series.map((name) => ({ name, ...data.series[name] }));
    const total = series.reduce((n, s) => n + s.values.length, 0);
    if (spec.onlyWhenMeasured && total === 0) continue;
    const unit = UNIT[series[0].unit] || series[0].unit;
    const card = el("figure", { class: "chart", "data-vital": spec.id });
    const limits = data.reference_ranges[spec.series[0]] || null;
    const limitLines = [limitText(limits, unit)];
    if (spec.id === "blood_pressure") {
      limitLines[0] = "Systolic " + limitText(limits, unit).replace(/^Reference: /, "");
      limitLines.push("Diastolic " + limitText(data.reference_ranges.diastolic_bp, unit).replace(/^Reference: /, "") + " (dashed)");
    }
    card.append(el("h3", { text: `${spec.title} (${unit})` }), el("p", { class: "summary", text: summaryText(series, unit) }));
    for (const line of limitLines) card.append(el("p", { class: "limits", text: line }));
    container.append(card);
    if (total === 0) { card.append(el("div", { class: "nodata", text: "No readings in this period." })); continue; }
    const plot = el("div", { class: "plot", role: "img", "aria-label": `${spec.title} chart; the readings are listed in the table below` });
    card.append(plot, readingsTable(series, unit));
    if (window.uPlot) charts.push(drawChart(plot, spec, series, data.reference_ranges));
  }
}

function summaryText(series, unit) {
  return series.map((s) => {
    const n = s.values.length;
    if (!n) return `${SERIES_LABEL[s.name] || "No"} readings: none`;
    const latest = s.values[n - 1];
    const label = SERIES_LABEL[s.name] ? `${SERIES_LABEL[s.name]}: latest` : "Latest";
    const averaged = s.averaged_over_s ? `; averaged over ${Math.round(s.averaged_over_s / 60)} min` : "";
    return `${label} ${round(latest)} ${unit} at ${formatTime(new Date(s.times[n - 1] * 1000).toISOString())} (${n} readings${averaged})`;
  }).join(" · ");
}

function round(value) { return Math.round(value * 10) / 10; }

function readingsTable(series, unit) {
  const rows = [];
  for (const s of series) {
    for (let i = s.values.length - 1; i >= 0; i--) {
      rows.push([s.times[i], SERIES_LABEL[s.name] || "", s.values[i], s.levels ? s.levels[i] : null]);
    }
  }
  rows.sort((a, b) => b[0] - a[0]);
  const shown = rows.slice(0, 200);
  const body = el("tbody", {}, ...shown.map(([t, label, value, level]) => el("tr", {},
    el("td", { text: formatTime(new Date(t * 1000).toISOString()) }),
    el("td", { text: `${label ? label + " " : ""}${round(value)} ${unit}` }),
    el("td", {}, level ? el("span", { class: "level " + level, text: level }) : "–"))));
  return el("details", {},
    el("summary", { text: `Readings (${rows.length}${rows.length > shown.length ? `, newest ${shown.length} shown` : ""})` }),
    el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "Measured" }), el("th", { text: "Value" }), el("th", { text: "Level" }))), body));
}

function drawChart(plot, spec, series, ranges) {
  const tables = series.map((s) => [s.times, s.values]);
  const aligned = tables.length === 1 ? tables[0] : uPlot.join(tables);
  const primary = ranges[spec.series[0]] || null;
  const dashed = spec.id === "blood_pressure" ? ranges.diastolic_bp || null : null;
  const bounds = [primary, dashed].filter(Boolean)
    .flatMap((l) => [l.red_low, l.yellow_low, l.yellow_high, l.red_high]).filter((v) => v !== null);
  const width = Math.max(300, plot.parentElement.clientWidth - 20);
  const options = {
    width,
    height: 200,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), TZ),
    legend: { show: series.length > 1, live: false },
    scales: {
      x: { time: true },
      y: {
        range: (u, min, max) => {
          const lo = Math.min(min, ...bounds);
          const hi = Math.max(max, ...bounds);
          const pad = Math.max((hi - lo) * 0.08, 1);
          return [lo - pad, hi + pad];
        },
      },
    },
    axes: [{ values: timeLabels }, {}],
    series: [{}, ...series.map((s, i) => ({
      label: SERIES_LABEL[s.name] || spec.title,
      stroke: SERIES_COLOUR[i],
      width: 2,
      spanGaps: true,
      points: { show: true, size: 5, fill: SERIES_COLOUR[i] },
    }))],
    hooks: { drawClear: [(u) => drawRanges(u, primary, dashed)] },
  };
  return new uPlot(options, aligned, plot);
}

// Axis labels in Copenhagen time: days when the ticks are a day or more apart, otherwise clock
// times with the date under the first tick of each day.
function timeLabels(u, splits, axisIdx, space, increment) {
  let previousDay = null;
  return splits.map((ts) => {
    const at = new Date(ts * 1000);
    const day = dayFormat.format(at);
    if (increment >= 86400) return day;
    const label = day === previousDay ? clockFormat.format(at) : `${clockFormat.format(at)}\n${day}`;
    previousDay = day;
    return label;
  });
}

// Red and yellow zones are shaded behind the data; the second series' limits (diastolic) are
// drawn as dashed lines so the two ranges stay distinguishable.
function drawRanges(u, limits, dashed) {
  const ctx = u.ctx;
  const { left, top, width, height } = u.bbox;
  const yMin = u.scales.y.min;
  const yMax = u.scales.y.max;
  const y = (v) => u.valToPos(Math.min(Math.max(v, yMin), yMax), "y", true);
  const band = (from, to, colour) => {
    if (from === null || to === null || to <= from) return;
    ctx.fillStyle = colour;
    ctx.fillRect(left, y(to), width, y(from) - y(to));
  };
  ctx.save();
  ctx.beginPath();
  ctx.rect(left, top, width, height);
  ctx.clip();
  if (limits) {
    const redLow = limits.red_low, yellowLow = limits.yellow_low, yellowHigh = limits.yellow_high, redHigh = limits.red_high;
    band(yMin, redLow ?? null, "rgba(179,0,27,0.14)");
    band(redLow ?? yMin, yellowLow ?? null, "rgba(241,196,15,0.22)");
    band(yellowHigh ?? null, redHigh ?? yMax, "rgba(241,196,15,0.22)");
    band(redHigh ?? null, yMax, "rgba(179,0,27,0.14)");
  }
  if (dashed) {
    ctx.setLineDash([6, 4]);
    ctx.lineWidth = 1;
    for (const [value, colour] of [[dashed.yellow_high, "#8a6d00"], [dashed.red_high, "#b3001b"], [dashed.yellow_low, "#8a6d00"], [dashed.red_low, "#b3001b"]]) {
      if (value === null || value === undefined || value < yMin || value > yMax) continue;
      ctx.strokeStyle = colour;
      ctx.beginPath();
      ctx.moveTo(left, y(value));
      ctx.lineTo(left + width, y(value));
      ctx.stroke();
    }
  }
  ctx.restore();
}

function renderHistory(alerts) {
  const body = $("history").tBodies[0];
  body.replaceChildren(...alerts.map((a) => {
    const changes = el("ul", { class: "reasons" }, ...a.changes.map((c) => el("li", { text: `${c.change} ${formatTime(c.at)} by ${c.actor}` })));
    return el("tr", { class: a.status },
      el("td", { text: formatTime(a.opened_at) }),
      el("td", {}, severityBadge(a.severity)),
      el("td", {}, news2Cell(a.news2)),
      el("td", {}, reasonList(a.reasons, HISTORY_REASONS_SHOWN), mentionsModel(a.reasons) ? null : modelLine(a.model)),
      el("td", { text: a.status }),
      el("td", {}, changes));
  }));
  $("history-empty").hidden = alerts.length > 0;
}

// ---- sign-in --------------------------------------------------------------------------------------

function signOut(reason) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.signedOut = true;
  clearTimeout(state.retryTimer);
  if (state.socket) { const s = state.socket; state.socket = null; s.close(); }
  // The next sign-in may be another organisation: start from a full snapshot.
  state.alerts.clear();
  state.safeSeq = null;
  state.recent = [];
  state.everSynced = false;
  render();
  setStatus("signed out", "down");
  showSignin(reason);
}

async function showSignin(reason) {
  $("board").hidden = true;
  $("patient").hidden = true;
  $("signout").hidden = true;
  $("signin").hidden = false;
  $("signin-problem").hidden = !reason;
  $("signin-problem").textContent = reason || "";
  try {
    const response = await fetch("/v1/dev/organisations");
    if (!response.ok) return;
    const { organisations } = await response.json();
    $("org").replaceChildren(...organisations.map((o) => el("option", { value: o.org_id, text: `${o.name} (${o.org_id})` })));
    $("devlogin").hidden = false;
  } catch (e) { /* development sign-in is simply not offered */ }
}

function start() {
  if (!token()) return showSignin();
  state.signedOut = false;
  state.me = claims();
  state.clinicians = null;
  $("signin").hidden = true;
  $("signout").hidden = false;
  $("sound").hidden = false;
  setStatus("connecting…", "");
  render();
  route();
  connect();
}

$("devlogin").addEventListener("submit", async (event) => {
  event.preventDefault();
  const response = await postJson("/v1/dev/login", { org_id: $("org").value });
  if (!response.ok) { $("signin-problem").hidden = false; $("signin-problem").textContent = await problem(response); return; }
  sessionStorage.setItem(TOKEN_KEY, (await response.json()).token);
  start();
});
$("tokenlogin").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  $("token").value = "";
  start();
});
$("signout").addEventListener("click", () => signOut());
$("sound").addEventListener("click", () => {
  if (sound.ctx && sound.ctx.state === "running") sound.on = !sound.on;
  updateSoundButton();
});
$("back").addEventListener("click", () => { location.hash = ""; });
$("days").addEventListener("change", route);
$("patient").addEventListener("keydown", (event) => { if (event.key === "Escape") location.hash = ""; });
window.addEventListener("hashchange", route);
document.addEventListener("pointerdown", unlockAudio, true);
document.addEventListener("keydown", unlockAudio, true);
setInterval(() => {
  for (const age of document.querySelectorAll(".age")) age.textContent = formatAge(age.dataset.opened);
}, 30000);
setInterval(probeVideo, 60000);
probeVideo();
start();
