// Nærvagt video: the specialist's queue of consultation requests, presence and accepting.
"use strict";

(() => {
  const JWT_KEY = "naervagt.specialist.jwt";
  const QUEUE_EVERY_MS = 10000;
  const PRESENCE_EVERY_MS = 60000;
  const $ = (id) => document.getElementById(id);

  const state = { jwt: null, subject: null, specialties: [], timers: [] };

  function setStatus(text) {
    $("status").textContent = text;
  }

  function claimsOf(jwt) {
    try {
      const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const json = new TextDecoder().decode(
        Uint8Array.from(atob(part + "===".slice((part.length + 3) % 4)), (c) => c.charCodeAt(0)),
      );
      return JSON.parse(json);
    } catch {
      return null;
    }
  }

  async function api(method, path, body) {
    const response = await fetch(path, {
      method,
      headers: {
        Authorization: `Bearer ${state.jwt}`,
        ...(body ? { "Content-Type": "application/json" } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
      cache: "no-store",
      keepalive: method === "PUT",
    });
    const document_ = await response.json().catch(() => ({}));
    if (response.status === 401) signOut("Your sign-in has expired.");
    return { status: response.status, ok: response.ok, body: document_ };
  }

  function waited(since) {
    const minutes = Math.max(0, Math.round((Date.now() - new Date(since)) / 60000));
    return minutes < 60 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  }

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function badge(text, kind) {
    const span = document.createElement("span");
    span.className = `badge ${kind}`;
    span.textContent = text;
    return span;
  }

  async function accept(consult, button) {
    button.disabled = true;
    const { status, ok, body } = await api("POST", `/v1/consults/${consult.id}/accept`);
    if (ok) {
      setStatus("Accepted; the consultation opens in a new tab.");
      window.open(body.join_url, "_blank", "noopener");
    } else if (status === 409) {
      setStatus("Another specialist took that request.");
    } else {
      setStatus(body.message || `Could not accept (HTTP ${status})`);
    }
    await refresh();
  }

  async function rejoin(consult) {
    const { ok, body, status } = await api("POST", `/v1/consults/${consult.id}/join`);
    if (ok) window.open(body.join_url, "_blank", "noopener");
    else setStatus(body.message || `Could not open the room (HTTP ${status})`);
  }

  function renderQueue(consults) {
    const rows = consults.map((consult) => {
      const row = document.createElement("tr");
      const urgency = document.createElement("td");
      urgency.append(badge(consult.urgency, consult.urgency));
      if (consult.escalated) urgency.append(" ", badge("escalated", "escalated"));
      const action = document.createElement("td");
      const button = document.createElement("button");
      button.className = "primary";
      button.textContent = "Accept";
      button.addEventListener("click", () => accept(consult, button));
      action.append(button);
      row.append(
        urgency,
        cell(waited(consult.requested_at)),
        cell(consult.specialty),
        cell(consult.patient_id),
        cell(consult.reason),
        cell(consult.requested_by.org_id),
        action,
      );
      return row;
    });
    $("queue").replaceChildren(...rows);
    $("queue-empty").hidden = rows.length > 0;
  }

  function renderMine(consults) {
    const rows = consults
      .filter((c) => c.accepted_by && c.accepted_by.subject === state.subject)
      .map((consult) => {
        const row = document.createElement("tr");
        const action = document.createElement("td");
        const button = document.createElement("button");
        button.textContent = "Open room";
        button.addEventListener("click", () => rejoin(consult));
        action.append(button);
        row.append(
          cell(new Date(consult.accepted_at).toLocaleTimeString()),
          cell(consult.specialty),
          cell(consult.patient_id),
          cell(consult.reason),
          action,
        );
        return row;
      });
    $("mine").replaceChildren(...rows);
  }

  async function refresh() {
    const specialty = $("specialty").value;
    const query = specialty ? `&specialty=${encodeURIComponent(specialty)}` : "";
    const [waiting, accepted, board] = await Promise.all([
      api("GET", `/v1/consults?status=waiting${query}`),
      api("GET", `/v1/consults?status=accepted${query}`),
      api("GET", `/v1/presence${specialty ? `?specialty=${encodeURIComponent(specialty)}` : ""}`),
    ]);
    if (waiting.ok) renderQueue(waiting.body.consults);
    else setStatus(waiting.body.message || `Queue not available (HTTP ${waiting.status})`);
    if (accepted.ok) renderMine(accepted.body.consults);
    if (board.ok) $("board").textContent = `${board.body.available} available, ${board.body.busy} busy`;
  }

  async function sendPresence(status) {
    const { ok, body } = await api("PUT", "/v1/presence", { status });
    if (!ok) {
      setStatus(body.message || "Presence not saved");
      return;
    }
    if (state.specialties.length === 0) {
      state.specialties = body.specialties;
      const options = [new Option("All my specialties", "")].concat(
        body.specialties.map((s) => new Option(s.replace(/_/g, " "), s)),
      );
      $("specialty").replaceChildren(...options);
    }
  }

  async function start(jwt) {
    const claims = claimsOf(jwt);
    if (!claims || claims.role !== "specialist") {
      setStatus("That token is not a specialist's.");
      return;
    }
    state.jwt = jwt;
    state.subject = claims.sub;
    sessionStorage.setItem(JWT_KEY, jwt);
    $("who").textContent = `${claims.sub} — ${claims.org}`;
    $("signin").hidden = true;
    $("queue-section").hidden = false;
    await sendPresence($("presence").value);
    await refresh();
    state.timers.push(setInterval(refresh, QUEUE_EVERY_MS));
    state.timers.push(setInterval(() => sendPresence($("presence").value), PRESENCE_EVERY_MS));
  }

  function signOut(message) {
    for (const timer of state.timers) clearInterval(timer);
    state.timers = [];
    state.jwt = null;
    sessionStorage.removeItem(JWT_KEY);
    $("queue-section").hidden = true;
    $("signin").hidden = false;
    setStatus(message || "");
  }

  async function offerDevSignIn() {
    const response = await fetch("/v1/dev/departments", { cache: "no-store" });
    if (!response.ok) return;
    const { departments } = await response.json();
    $("dev-department").replaceChildren(
      ...departments.map((d) => new Option(`${d.name} (${d.specialties.join(", ")})`, d.org_id)),
    );
    $("dev-signin").hidden = departments.length === 0;
  }

  async function devLogin() {
    const response = await fetch("/v1/dev/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ org_id: $("dev-department").value }),
    });
    const body = await response.json().catch(() => ({}));
    if (response.ok) await start(body.token);
    else setStatus(body.message || "Sign-in failed");
  }

  function boot() {
    $("dev-login").addEventListener("click", devLogin);
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      start($("token-input").value.trim());
    });
    $("presence").addEventListener("change", () => sendPresence($("presence").value));
    $("specialty").addEventListener("change", refresh);
    $("signout").addEventListener("click", async () => {
      await sendPresence("offline");
      signOut("Signed out.");
    });
    // Closing the page says so at once; otherwise the status goes stale within minutes.
    window.addEventListener("pagehide", () => {
      if (state.jwt) api("PUT", "/v1/presence", { status: "offline" });
    });
    const stored = sessionStorage.getItem(JWT_KEY);
    if (stored) {
      start(stored);
    } else {
      $("signin").hidden = false;
      offerDevSignIn();
    }
  }

  document.addEventListener("DOMContentLoaded", boot);
})();
