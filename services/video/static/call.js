// Nærvagt video: the participant's side of a consultation room.
//
// Signaling follows perfect negotiation (W3C WebRTC, "perfect negotiation example") with the
// polite flag from the server: peers already in the room are impolite and offer to a newcomer,
// the newcomer is polite and answers. The token arrives in the address (/join/<token>) and is
// moved into sessionStorage at once, so that it stays out of the history and out of referrers.
"use strict";

(() => {
  const TOKEN_KEY = "naervagt.join.token";
  const JOINED_KEY = "naervagt.join.joined";
  const LOW_BITRATE = 500_000;
  const LOW_HEIGHT = 360;
  const TURN_CHECK_MS = 8000;
  const ICE_GRACE_MS = 4000;
  const ICE_RESTART_MS = 15000;
  const VITALS_EVERY_MS = 60000;
  const STATS_EVERY_MS = 5000;
  const POOR_SAMPLES = 6;
  const HOST_ROLES = new Set(["nurse", "gp", "specialist"]);
  const ROLE_NAMES = {
    nurse: "nurse", gp: "GP", specialist: "specialist",
    patient: "patient", relative: "relative", interpreter: "interpreter",
  };
  const VITAL_LABELS = {
    respiratory_rate: "Respiration rate", spo2: "SpO₂", on_oxygen: "Supplemental oxygen",
    systolic_bp: "Systolic BP", diastolic_bp: "Diastolic BP", heart_rate: "Pulse",
    consciousness: "Consciousness (ACVPU)", temperature: "Temperature", weight: "Weight",
    glucose: "Glucose",
  };
  const UNIT_LABELS = { "mm[Hg]": "mmHg", Cel: "°C", "/min": "/min", "1": "" };
  const ENDINGS = {
    denied: "The clinician did not let you in this time.",
    "room-closed": "This consultation has ended.",
    "token-expired": "The link has expired. Ask for a new one.",
    "token-invalid": "The link is not valid.",
    "token-wrong-room": "The link is for another consultation.",
    replaced: "You joined this consultation from another window.",
    "room-full": "The consultation is full.",
    left: "You left the consultation.",
  };

  const $ = (id) => document.getElementById(id);

  const call = {
    token: null,
    claims: null,
    isHost: false,
    ws: null,
    peerId: null,
    admitted: false,
    peers: new Map(), // peer id -> connection entry
    known: new Map(), // peer id -> {peer_id, role, display_name}
    local: null,
    iceServers: [],
    iceFetchedAt: 0,
    iceTtlMs: 0,
    lowBandwidth: false,
    lowBandwidthChosen: false,
    audioOnly: false,
    joined: false,
    leaving: false,
    ended: false,
    reconnectDelay: 500,
    reconnectTimer: null,
    vitalsTimer: null,
    statsTimer: null,
    poorSamples: 0,
  };
  // For inspection from the browser console (and by automated browser tests).
  window.naervagtCall = call;

  // -- token and page state ------------------------------------------------------------------

  function takeToken() {
    const match = location.pathname.match(/^\/join\/([^/]+)$/);
    if (match) {
      const token = decodeURIComponent(match[1]);
      if (sessionStorage.getItem(TOKEN_KEY) !== token) sessionStorage.removeItem(JOINED_KEY);
      sessionStorage.setItem(TOKEN_KEY, token);
      history.replaceState(null, "", "/join");
    }
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function claimsOf(token) {
    try {
      const part = token.split(".")[0].replace(/-/g, "+").replace(/_/g, "/");
      const bytes = Uint8Array.from(atob(part + "===".slice((part.length + 3) % 4)), (c) =>
        c.charCodeAt(0),
      );
      const payload = JSON.parse(new TextDecoder().decode(bytes));
      if (typeof payload.room !== "string" || typeof payload.exp !== "number") return null;
      return payload;
    } catch {
      return null;
    }
  }

  function show(section) {
    for (const id of ["precall", "lobby", "call", "ended"]) $(id).hidden = id !== section;
  }

  function setStatus(text) {
    $("status").textContent = text;
  }

  function setCheck(name, state, text) {
    const item = $(`check-${name}`);
    item.dataset.state = state;
    item.querySelector("span").textContent = text;
  }

  function end(reason, { canRejoin = false } = {}) {
    call.ended = true;
    sessionStorage.removeItem(JOINED_KEY);
    closeAllPeers();
    stopTimers();
    if (call.local) for (const track of call.local.getTracks()) track.stop();
    call.local = null;
    $("ended-message").textContent = ENDINGS[reason] || reason;
    $("rejoin").hidden = !canRejoin;
    setStatus("");
    show("ended");
  }

  // -- pre-call check ------------------------------------------------------------------------

  function captureConstraints() {
    const height = call.lowBandwidth ? LOW_HEIGHT : 720;
    return {
      audio: { echoCancellation: true, noiseSuppression: true },
      video: { height: { ideal: height }, width: { ideal: Math.round((height * 16) / 9) } },
    };
  }

  async function checkDevices() {
    const constraints = captureConstraints();
    let stream = null;
    try {
      stream = await navigator.mediaDevices.getUserMedia(constraints);
    } catch (error) {
      try {
        stream = await navigator.mediaDevices.getUserMedia({ audio: constraints.audio });
        setCheck("camera", "fail", `not available (${error.name}); you can join with sound only`);
      } catch (audioError) {
        setCheck("camera", "fail", `not available (${error.name})`);
        setCheck("microphone", "fail", `not available (${audioError.name})`);
        return null;
      }
    }
    const video = stream.getVideoTracks()[0];
    const audio = stream.getAudioTracks()[0];
    if (video) {
      const { width, height } = video.getSettings();
      setCheck("camera", "ok", `working${width ? ` (${width}×${height})` : ""}`);
    }
    setCheck("microphone", audio ? "ok" : "fail", audio ? "working" : "not available");
    $("preview").srcObject = stream;
    return stream;
  }

  async function fetchIceServers() {
    const response = await fetch("/v1/turn", {
      headers: { Authorization: `Bearer ${call.token}` },
      cache: "no-store",
    });
    if (response.status === 404) return { configured: false, iceServers: [] };
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw Object.assign(new Error(body.message || `HTTP ${response.status}`), {
        code: body.code,
      });
    }
    const body = await response.json();
    call.iceFetchedAt = Date.now();
    call.iceTtlMs = (body.ttl_s || 3600) * 1000;
    return { configured: true, iceServers: body.iceServers };
  }

  async function refreshIceServersIfOld() {
    if (!call.iceFetchedAt || Date.now() - call.iceFetchedAt < call.iceTtlMs / 2) return;
    try {
      call.iceServers = (await fetchIceServers()).iceServers;
    } catch (error) {
      console.warn("TURN credentials not renewed", error);
    }
  }

  // A relay candidate proves the relay is reachable and accepts our credentials.
  function gathersRelay(iceServers) {
    const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: "relay" });
    pc.createDataChannel("probe");
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), TURN_CHECK_MS);
      pc.onicecandidate = ({ candidate }) => {
        if (candidate && / typ relay /.test(candidate.candidate)) {
          clearTimeout(timer);
          resolve(true);
        } else if (!candidate) {
          clearTimeout(timer);
          resolve(false);
        }
      };
      pc.createOffer()
        .then((offer) => pc.setLocalDescription(offer))
        .catch(() => resolve(false));
    }).finally(() => pc.close());
  }

  async function checkRelay() {
    let turn;
    try {
      turn = await fetchIceServers();
    } catch (error) {
      if (error.code && ENDINGS[error.code]) {
        end(error.code);
        return false;
      }
      setCheck("turn", "warn", "could not be asked; direct connections only");
      return true;
    }
    call.iceServers = turn.iceServers;
    if (!turn.configured) {
      setCheck("turn", "warn", "not configured; direct connections only");
      return true;
    }
    // Joining need not wait for the relay test: it only tells whether the relay would work.
    gathersRelay(turn.iceServers).then((ok) =>
      setCheck(
        "turn",
        ok ? "ok" : "warn",
        ok ? "reachable" : "not reachable; the call may fail behind strict firewalls",
      ),
    );
    return true;
  }

  function connectionIsPoor() {
    const info = navigator.connection;
    if (!info) return { poor: false, text: "no information from the browser" };
    const slowType = ["slow-2g", "2g", "3g"].includes(info.effectiveType);
    // downlink is a coarse estimate (browsers start from a default near 1.3 Mbit/s): only a
    // clearly low value counts.
    const slowLink = typeof info.downlink === "number" && info.downlink > 0 && info.downlink < 1;
    const poor = Boolean(info.saveData) || slowType || slowLink;
    const speed = typeof info.downlink === "number" ? `${info.downlink} Mbit/s` : "unknown speed";
    return { poor, text: `${info.effectiveType || "unknown"}, ${speed}${info.saveData ? ", data saver" : ""}` };
  }

  function checkNetwork() {
    const { poor, text } = connectionIsPoor();
    setCheck("network", poor ? "warn" : "ok", poor ? `slow (${text})` : text);
    if (!call.lowBandwidthChosen) setLowBandwidth(poor, { chosen: false });
  }

  // -- media controls ------------------------------------------------------------------------

  function localTrack(kind) {
    if (!call.local) return null;
    if (kind === "video" && call.audioOnly) return null;
    return call.local.getTracks().find((t) => t.kind === kind && t.readyState === "live") || null;
  }

  function wantedDirection(kind, track) {
    if (kind === "video" && call.audioOnly) return "inactive";
    return track ? "sendrecv" : "recvonly";
  }

  // Attach our tracks to one connection. Before any description this adds transceivers (and
  // negotiation follows); after a remote offer it reuses the transceivers the offer created.
  async function attachLocal(entry) {
    for (const kind of ["audio", "video"]) {
      const track = localTrack(kind);
      let transceiver = entry.pc
        .getTransceivers()
        .find((t) => !t.stopped && t.receiver.track.kind === kind);
      if (!transceiver) {
        transceiver = entry.pc.addTransceiver(kind, {
          direction: wantedDirection(kind, track),
          streams: call.local ? [call.local] : [],
        });
      } else {
        transceiver.direction = wantedDirection(kind, track);
        if (call.local && transceiver.sender.setStreams) transceiver.sender.setStreams(call.local);
      }
      if (transceiver.sender.track !== track) await transceiver.sender.replaceTrack(track);
    }
  }

  async function limitSenders(entry) {
    for (const sender of entry.pc.getSenders()) {
      if (!sender.track || sender.track.kind !== "video") continue;
      const params = sender.getParameters();
      if (!params.encodings || params.encodings.length === 0) continue;
      const encoding = params.encodings[0];
      if (call.lowBandwidth) {
        const height = sender.track.getSettings().height || LOW_HEIGHT;
        encoding.maxBitrate = LOW_BITRATE;
        encoding.scaleResolutionDownBy = Math.max(1, height / LOW_HEIGHT);
      } else {
        delete encoding.maxBitrate;
        encoding.scaleResolutionDownBy = 1;
      }
      try {
        await sender.setParameters(params);
      } catch (error) {
        console.warn("could not limit the video sender", error);
      }
    }
  }

  function setLowBandwidth(on, { chosen }) {
    call.lowBandwidth = on;
    if (chosen) call.lowBandwidthChosen = true;
    $("low-bandwidth").checked = on;
    $("low-bw").setAttribute("aria-pressed", String(on));
    for (const entry of call.peers.values()) limitSenders(entry);
  }

  function toggleTrack(kind, button, pressedText, releasedText) {
    const track = call.local && call.local.getTracks().find((t) => t.kind === kind);
    if (!track) return;
    track.enabled = !track.enabled;
    button.setAttribute("aria-pressed", String(!track.enabled));
    button.textContent = track.enabled ? releasedText : pressedText;
  }

  async function setAudioOnly(on) {
    call.audioOnly = on;
    $("audio-only").setAttribute("aria-pressed", String(on));
    $("audio-only").textContent = on ? "Video on" : "Audio only";
    if (on) {
      for (const track of call.local ? call.local.getVideoTracks() : []) {
        track.stop();
        call.local.removeTrack(track);
      }
    } else if (call.local && call.local.getVideoTracks().length === 0) {
      try {
        const stream = await navigator.mediaDevices.getUserMedia({
          video: captureConstraints().video,
        });
        call.local.addTrack(stream.getVideoTracks()[0]);
      } catch (error) {
        setStatus(`Camera not available (${error.name})`);
      }
    }
    $("local").srcObject = call.local;
    // Direction changes renegotiate through perfect negotiation, from either side.
    for (const entry of call.peers.values()) await attachLocal(entry);
  }

  // -- peer connections (perfect negotiation) ------------------------------------------------

  function send(message) {
    if (call.ws && call.ws.readyState === WebSocket.OPEN) call.ws.send(JSON.stringify(message));
  }

  function signal(to, data) {
    send({ type: "signal", to, data });
  }

  function tileFor(peerId) {
    let tile = document.querySelector(`figure[data-peer-id="${CSS.escape(peerId)}"]`);
    if (tile) return tile;
    const info = call.known.get(peerId) || { display_name: "Participant", role: "" };
    tile = document.createElement("figure");
    tile.className = "tile";
    tile.dataset.peerId = peerId;
    const video = document.createElement("video");
    video.className = "remote";
    video.autoplay = true;
    video.playsInline = true;
    const caption = document.createElement("figcaption");
    caption.textContent = `${info.display_name}${info.role ? ` (${ROLE_NAMES[info.role] || info.role})` : ""}`;
    tile.append(video, caption);
    if (call.isHost && info.role && !HOST_ROLES.has(info.role)) {
      const toLobby = document.createElement("button");
      toLobby.className = "tile-action";
      toLobby.textContent = "Send to waiting room";
      toLobby.addEventListener("click", () => send({ type: "lobby", peer_id: peerId }));
      tile.append(toLobby);
    }
    $("videos").append(tile);
    return tile;
  }

  function playRemote(video) {
    video.play().catch(() => {
      // Without a click first, browsers may refuse to play sound: play muted, offer sound.
      video.muted = true;
      video.play().catch(() => {});
      const tile = video.closest("figure");
      if (tile && !tile.querySelector(".unmute")) {
        const unmute = document.createElement("button");
        unmute.className = "tile-action unmute";
        unmute.textContent = "Turn sound on";
        unmute.addEventListener("click", () => {
          video.muted = false;
          unmute.remove();
        });
        tile.append(unmute);
      }
    });
  }

  function createPeer(peerId, polite) {
    const pc = new RTCPeerConnection({ iceServers: call.iceServers });
    const entry = {
      peerId, pc, polite,
      makingOffer: false, ignoreOffer: false, answerPending: false,
      iceTimer: null, iceRestarts: 0, remote: new MediaStream(),
    };
    call.peers.set(peerId, entry);
    const video = tileFor(peerId).querySelector("video");
    pc.ontrack = ({ track, streams }) => {
      const stream = streams[0] || entry.remote;
      if (!streams[0]) entry.remote.addTrack(track);
      if (video.srcObject !== stream) video.srcObject = stream;
      playRemote(video);
    };
    pc.onicecandidate = ({ candidate }) => {
      signal(peerId, { candidate: candidate ? candidate.toJSON() : null });
    };
    pc.onnegotiationneeded = async () => {
      try {
        entry.makingOffer = true;
        await pc.setLocalDescription();
        signal(peerId, { description: { type: pc.localDescription.type, sdp: pc.localDescription.sdp } });
      } catch (error) {
        console.warn("offer failed", error);
      } finally {
        entry.makingOffer = false;
      }
    };
    pc.onsignalingstatechange = () => {
      if (pc.signalingState === "stable") limitSenders(entry);
    };
    pc.oniceconnectionstatechange = () => watchIce(entry);
    return entry;
  }

  async function onDescription(entry, description) {
    const pc = entry.pc;
    const readyForOffer =
      !entry.makingOffer && (pc.signalingState === "stable" || entry.answerPending);
    const collision = description.type === "offer" && !readyForOffer;
    entry.ignoreOffer = !entry.polite && collision;
    if (entry.ignoreOffer) return;
    entry.answerPending = description.type === "answer";
    await pc.setRemoteDescription(description);
    entry.answerPending = false;
    if (description.type === "offer") {
      await attachLocal(entry);
      await pc.setLocalDescription();
      signal(entry.peerId, {
        description: { type: pc.localDescription.type, sdp: pc.localDescription.sdp },
      });
    }
  }

  async function onSignal(from, data) {
    let entry = call.peers.get(from);
    if (!entry) {
      if (!call.known.has(from)) return;
      entry = createPeer(from, true);
    }
    try {
      if (data.description) {
        await onDescription(entry, data.description);
      } else if ("candidate" in data) {
        try {
          await entry.pc.addIceCandidate(data.candidate || undefined);
        } catch (error) {
          if (!entry.ignoreOffer) throw error;
        }
      }
    } catch (error) {
      console.warn("signaling step failed", error);
    }
  }

  function watchIce(entry) {
    const state = entry.pc.iceConnectionState;
    clearTimeout(entry.iceTimer);
    if (state === "connected" || state === "completed") {
      entry.iceRestarts = 0;
    } else if (state === "disconnected") {
      entry.iceTimer = setTimeout(() => {
        if (entry.pc.iceConnectionState === "disconnected") restartIce(entry);
      }, ICE_GRACE_MS);
    } else if (state === "failed") {
      restartIce(entry);
    }
  }

  // Recover media without leaving the room: ICE restart first; if that does not bring the
  // connection back, reconnect signaling, which renegotiates every connection from scratch.
  async function restartIce(entry) {
    if (call.peers.get(entry.peerId) !== entry) return;
    entry.iceRestarts += 1;
    if (entry.iceRestarts > 2) {
      rejoin();
      return;
    }
    setStatus("Reconnecting media…");
    await refreshIceServersIfOld();
    entry.pc.setConfiguration({ ...entry.pc.getConfiguration(), iceServers: call.iceServers });
    entry.pc.restartIce();
    entry.iceTimer = setTimeout(() => {
      const state = entry.pc.iceConnectionState;
      if (state !== "connected" && state !== "completed") rejoin();
    }, ICE_RESTART_MS);
  }

  function closePeer(peerId) {
    const entry = call.peers.get(peerId);
    if (entry) {
      clearTimeout(entry.iceTimer);
      entry.pc.close();
      call.peers.delete(peerId);
    }
    const tile = document.querySelector(`figure[data-peer-id="${CSS.escape(peerId)}"]`);
    if (tile) tile.remove();
  }

  function closeAllPeers() {
    for (const peerId of [...call.peers.keys()]) closePeer(peerId);
    for (const tile of document.querySelectorAll("figure[data-peer-id]")) tile.remove();
    call.known.clear();
  }

  // -- room protocol -------------------------------------------------------------------------

  function enterCall(peers) {
    call.admitted = true;
    for (const peer of peers || []) call.known.set(peer.peer_id, peer);
    $("local").srcObject = call.local;
    show("call");
    setStatus("In the consultation");
    if (call.isHost) {
      $("vitals").hidden = false;
      $("invite").hidden = false;
      loadVitals();
      clearInterval(call.vitalsTimer);
      call.vitalsTimer = setInterval(loadVitals, VITALS_EVERY_MS);
    }
    clearInterval(call.statsTimer);
    call.statsTimer = setInterval(watchBandwidth, STATS_EVERY_MS);
  }

  function enterLobby() {
    call.admitted = false;
    closeAllPeers();
    show("lobby");
    setStatus("Waiting to be let in");
  }

  function knock(peer) {
    if (document.querySelector(`#knocks li[data-peer-id="${CSS.escape(peer.peer_id)}"]`)) return;
    const item = document.createElement("li");
    item.dataset.peerId = peer.peer_id;
    const label = document.createElement("span");
    label.textContent = `${peer.display_name} (${ROLE_NAMES[peer.role] || peer.role})`;
    const admit = document.createElement("button");
    admit.textContent = "Let in";
    admit.addEventListener("click", () => send({ type: "admit", peer_id: peer.peer_id }));
    const deny = document.createElement("button");
    deny.textContent = "Decline";
    deny.addEventListener("click", () => send({ type: "deny", peer_id: peer.peer_id }));
    item.append(label, admit, deny);
    $("knocks").append(item);
    $("waiting").hidden = false;
  }

  function forgetKnock(peerId) {
    const item = document.querySelector(`#knocks li[data-peer-id="${CSS.escape(peerId)}"]`);
    if (item) item.remove();
    $("waiting").hidden = $("knocks").children.length === 0;
  }

  async function onMessage(message) {
    switch (message.type) {
      case "welcome":
        // A new connection is a new identity in the room: the old connections are gone.
        closeAllPeers();
        $("knocks").replaceChildren();
        $("waiting").hidden = true;
        call.peerId = message.peer_id;
        if (message.state === "admitted") enterCall(message.peers);
        else enterLobby();
        break;
      case "admitted":
        enterCall(message.peers);
        break;
      case "moved-to-lobby":
        enterLobby();
        break;
      case "peer-joined": {
        forgetKnock(message.peer.peer_id);
        call.known.set(message.peer.peer_id, message.peer);
        const entry = createPeer(message.peer.peer_id, message.polite);
        await attachLocal(entry); // negotiationneeded follows: we offer
        break;
      }
      case "peer-left":
        forgetKnock(message.peer_id);
        call.known.delete(message.peer_id);
        closePeer(message.peer_id);
        break;
      case "knock":
        knock(message.peer);
        break;
      case "signal":
        await onSignal(message.from, message.data);
        break;
      case "error":
        if (ENDINGS[message.code]) setStatus(ENDINGS[message.code]);
        else setStatus(message.message || "Something went wrong");
        break;
      default:
        break;
    }
  }

  function socketUrl() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const room = encodeURIComponent(call.claims.room);
    return `${scheme}://${location.host}/v1/rooms/${room}/ws?token=${encodeURIComponent(call.token)}`;
  }

  function connect() {
    clearTimeout(call.reconnectTimer);
    const ws = new WebSocket(socketUrl());
    call.ws = ws;
    let chain = Promise.resolve();
    ws.onopen = () => {
      call.reconnectDelay = 500;
    };
    ws.onmessage = (event) => {
      if (ws !== call.ws) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      // Handle messages strictly in order, even when a step awaits.
      chain = chain.then(() => onMessage(message)).catch((e) => console.warn(e));
    };
    ws.onclose = (event) => {
      if (ws !== call.ws) return;
      call.ws = null;
      onSocketClosed(event);
    };
  }

  function onSocketClosed(event) {
    if (call.leaving || call.ended) return;
    if (event.code === 1008 || (event.code === 1000 && event.reason === "left")) {
      end(event.reason || "room-closed", { canRejoin: event.reason === "left" });
      return;
    }
    if (event.code === 1013 && event.reason === "room-full") {
      end("room-full", { canRejoin: true });
      return;
    }
    // Dropped, server restarting, or too slow: reconnect; the room keeps our place for a
    // host, and the media connections keep running until the new connection is in.
    setStatus("Connection lost; reconnecting…");
    const delay = call.reconnectDelay * (0.75 + Math.random() / 2);
    call.reconnectDelay = Math.min(call.reconnectDelay * 2, 8000);
    call.reconnectTimer = setTimeout(async () => {
      await refreshIceServersIfOld();
      connect();
    }, delay);
  }

  function rejoin() {
    if (call.ws) {
      const ws = call.ws;
      call.ws = null;
      ws.close(4000, "rejoin");
    }
    call.reconnectDelay = 500;
    onSocketClosed({ code: 4000, reason: "rejoin" });
  }

  async function join() {
    if (call.joined) return;
    call.joined = true;
    call.leaving = false;
    call.ended = false;
    sessionStorage.setItem(JOINED_KEY, "1");
    $("join").disabled = true;
    setStatus("Joining…");
    connect();
  }

  function leave() {
    call.leaving = true;
    send({ type: "leave" });
    if (call.ws) call.ws.close(1000, "left");
    call.ws = null;
    call.joined = false;
    end("left", { canRejoin: true });
  }

  function stopTimers() {
    clearTimeout(call.reconnectTimer);
    clearInterval(call.vitalsTimer);
    clearInterval(call.statsTimer);
  }

  // -- poor-connection detection -------------------------------------------------------------

  // The bandwidth estimate starts near 300 kbit/s and ramps up over the first seconds (slowly
  // with some peers), so only an estimate that stays under the low-bandwidth cap for half a
  // minute counts as a slow connection.
  async function watchBandwidth() {
    if (call.lowBandwidthChosen || call.lowBandwidth) return;
    if (await connectionLimited()) call.poorSamples += 1;
    else call.poorSamples = 0;
    if (call.poorSamples >= POOR_SAMPLES) {
      setLowBandwidth(true, { chosen: false });
      setStatus("Slow connection: low-bandwidth mode is on");
    }
  }

  async function connectionLimited() {
    for (const entry of call.peers.values()) {
      const stats = await entry.pc.getStats().catch(() => null);
      if (!stats) continue;
      for (const report of stats.values()) {
        const slowPair =
          report.type === "candidate-pair" && report.nominated && report.state === "succeeded" &&
          typeof report.availableOutgoingBitrate === "number" &&
          report.availableOutgoingBitrate < LOW_BITRATE;
        if (slowPair) return true;
      }
    }
    return false;
  }

  // -- vital signs (clinicians only) ---------------------------------------------------------

  function formatValue(reading) {
    if (typeof reading.value === "boolean") return reading.value ? "yes" : "no";
    const unit = UNIT_LABELS[reading.unit] ?? reading.unit;
    const value = typeof reading.value === "number" ? Number(reading.value.toFixed(1)) : reading.value;
    return `${value}${unit ? ` ${unit}` : ""}`;
  }

  async function loadVitals() {
    const room = encodeURIComponent(call.claims.room);
    let response;
    try {
      response = await fetch(`/v1/rooms/${room}/vitals`, {
        headers: { Authorization: `Bearer ${call.token}` },
        cache: "no-store",
      });
    } catch {
      return;
    }
    if (!response.ok) {
      $("vitals-updated").textContent = "Vital signs are not available.";
      return;
    }
    const body = await response.json();
    $("vitals-patient").textContent = body.patient_id ? `Patient ${body.patient_id}` : "No patient linked";
    const rows = body.readings.map((reading) => {
      const row = document.createElement("tr");
      row.dataset.type = reading.type;
      const label = document.createElement("td");
      label.textContent = VITAL_LABELS[reading.type] || reading.type;
      const value = document.createElement("td");
      value.className = "value";
      value.textContent = formatValue(reading);
      const when = document.createElement("td");
      when.className = "muted";
      when.textContent = new Date(reading.measured_at).toLocaleString();
      row.append(label, value, when);
      return row;
    });
    $("vitals-rows").replaceChildren(...rows);
    $("vitals-updated").textContent = body.readings.length
      ? `Updated ${new Date().toLocaleTimeString()}`
      : `No measurements in the last ${body.window_h} hours.`;
  }

  // -- invitations (hosts) -------------------------------------------------------------------

  async function createInvite(event) {
    event.preventDefault();
    const room = encodeURIComponent(call.claims.room);
    const response = await fetch(`/v1/rooms/${room}/invites`, {
      method: "POST",
      headers: { Authorization: `Bearer ${call.token}`, "Content-Type": "application/json" },
      body: JSON.stringify({
        role: $("invite-role").value,
        display_name: $("invite-name").value,
        ttl_s: Math.round(Number($("invite-ttl").value || 60) * 60),
      }),
    });
    const body = await response.json().catch(() => ({}));
    const output = $("invite-link");
    output.hidden = false;
    output.value = response.ok ? body.join_url : body.message || `HTTP ${response.status}`;
    if (response.ok) output.select();
  }

  // -- start ---------------------------------------------------------------------------------

  async function boot() {
    call.token = takeToken();
    call.claims = call.token ? claimsOf(call.token) : null;
    if (!call.claims) {
      end("token-invalid");
      return;
    }
    if (call.claims.exp * 1000 <= Date.now()) {
      end("token-expired");
      return;
    }
    call.isHost = HOST_ROLES.has(call.claims.role);
    $("who").textContent = `${call.claims.name} (${ROLE_NAMES[call.claims.role] || call.claims.role})`;

    $("join").addEventListener("click", join);
    $("rejoin").addEventListener("click", () => location.reload());
    $("leave").addEventListener("click", leave);
    $("mute").addEventListener("click", (e) => toggleTrack("audio", e.currentTarget, "Unmute", "Mute"));
    $("camera").addEventListener("click", (e) =>
      toggleTrack("video", e.currentTarget, "Camera on", "Camera off"),
    );
    $("audio-only").addEventListener("click", () => setAudioOnly(!call.audioOnly));
    $("low-bw").addEventListener("click", () => setLowBandwidth(!call.lowBandwidth, { chosen: true }));
    $("low-bandwidth").addEventListener("change", (e) =>
      setLowBandwidth(e.currentTarget.checked, { chosen: true }),
    );
    $("invite-form").addEventListener("submit", createInvite);
    if (navigator.connection) navigator.connection.addEventListener("change", checkNetwork);

    show("precall");
    checkNetwork();
    const [stream, relayOk] = await Promise.all([checkDevices(), checkRelay()]);
    if (!relayOk) return;
    call.local = stream || new MediaStream();
    $("join").disabled = false;
    // A reload during a call continues it.
    if (sessionStorage.getItem(JOINED_KEY) === "1") join();
  }

  document.addEventListener("DOMContentLoaded", boot);
})();
