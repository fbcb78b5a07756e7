// wattprint live dashboard: the REST API for the state, the WebSocket for what changes. No build step, no CDN.
"use strict";

(() => {
  const TOKEN_KEY = "wattprint.readToken";
  const RECENT = 50; // rows in the recent-events table
  const FEATURES = [
    ["active_power_w", "Active power (W)"], ["reactive_power_var", "Reactive power (var)"],
    ["apparent_power_va", "Apparent power (VA)"], ["current_a", "Current (A)"], ["voltage_v", "Voltage (V)"],
    ["peak_1", "Peak 1"], ["peak_2", "Peak 2"], ["peak_3", "Peak 3"],
  ];
  // Okabe–Ito: told apart with the common colour-vision deficiencies. Each label also gets its own marker
  // shape, so no cluster is identified by colour alone; unclustered events are grey crosses.
  const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];
  const SHAPES = ["circle", "square", "triangle", "diamond"];
  const UNCLUSTERED = "#6e7781";
  const PLOT = { width: 640, height: 420, left: 64, right: 16, top: 16, bottom: 44 };

  const $ = (id) => document.getElementById(id);
  const state = {
    token: null, wsUrl: null, socket: null, retries: 0, stopped: true, stale: false,
    // ClusterScope=device: the device whose runs, clusters and events the page shows (?device_id= of its address).
    device: null,
    total: 0, threshold: null, recent: [], runs: new Map(), current: null, clusters: [], points: [],
    loadingRun: null,
  };

  class AuthError extends Error {}

  // Panels of other capabilities (alerts.js, …) register here: start(token, api) after connecting, message(m)
  // for each live message, stop() when the token is forgotten.
  const panels = (window.wattprintPanels = window.wattprintPanels || []);

  // ------------------------------------------------------------------------------------------ the REST API

  async function api(path) {
    // Relative to the page, so it works under a stage path (/v1/dashboard) as well as at the root.
    const response = await fetch(path, { headers: { Authorization: `Bearer ${state.token}`, Accept: "application/json" } });
    if (response.status === 401 || response.status === 403) {
      throw new AuthError(response.status === 401 ? "This token is not known." : "This token cannot read (it needs scope read).");
    }
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response.json();
  }

  // The clustering routes' path, of the page's device when runs are per device (ClusterScope=device).
  function scoped(path) {
    if (state.device === null) return path;
    return `${path}${path.includes("?") ? "&" : "?"}device_id=${state.device}`;
  }

  async function loadRecent() {
    const page = await api(scoped(`events?order=desc&limit=${RECENT}`));
    state.recent = page.items;
    // seq is gapless: newest = count (a device's count comes with its summary instead)
    if (page.items.length && state.device === null) state.total = Math.max(state.total, page.items[0].seq);
    renderRecent(new Set());
  }

  async function loadRuns() {
    const body = await api(scoped("runs"));
    state.runs = new Map(body.runs.map((run) => [run.id, run]));
    renderRuns();
  }

  async function loadCurrent(announce) {
    const summary = await api(scoped("clusters/summary"));
    if (state.device !== null) state.total = Math.max(state.total, summary.device_events);
    if (summary.run === null) {
      state.current = null;
      state.clusters = [];
      state.points = [];
      if (state.threshold === null) state.threshold = state.total + summary.events_until_first_run;
      renderClusters();
      renderScatter();
      return;
    }
    const run = summary.run;
    state.loadingRun = run.id;
    state.current = run;
    state.clusters = summary.clusters;
    state.points = [];
    renderClusters();
    if (announce) {
      $("announce").textContent = `Run ${run.id} (threshold ${fmtInt(run.threshold)}) completed: now showing its ` +
        `${run.clusters} clusters.`;
    }
    // Every event of the run with its label, page by page; the plot fills in as pages arrive.
    let cursor = null;
    do {
      const page = await api(scoped(`events?run=${run.id}&limit=1000`) + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""));
      if (state.loadingRun !== run.id) return; // a newer run took over meanwhile
      for (const item of page.items) state.points.push(point(item));
      renderScatter();
      cursor = page.next;
    } while (cursor);
  }

  async function catchUp() {
    // After (re)connecting: whatever was missed while the socket was down.
    await Promise.all([loadRecent(), loadRuns(), loadEnergy(), ...panels.map((panel) => panel.start(state.token, api))]);
    const newest = latestDone();
    // A run done since the page last looked is news, told like one pushed (a run message that arrives meanwhile then
    // finds it shown already and says nothing).
    if (!state.current || (newest && newest.id !== state.current.id)) await loadCurrent(Boolean(newest));
    renderCounters();
  }

  // ---------------------------------------------------------------------------------------- the WebSocket

  function connect() {
    if (state.stopped) return;
    if (!state.wsUrl) {
      setConnection("error", "No live updates: this deployment has no WebSocket API");
      return;
    }
    const url = new URL(state.wsUrl, window.location.href);
    url.searchParams.set("token", state.token);
    const socket = new WebSocket(url);
    state.socket = socket;
    socket.addEventListener("open", () => {
      state.retries = 0;
      setConnection("live", "Live");
      if (state.stale) {
        state.stale = false;
        catchUp().catch(showError);
      }
    });
    socket.addEventListener("message", (event) => {
      try {
        const message = JSON.parse(event.data);
        handle(message);
        for (const panel of panels) panel.message(message);
      } catch (error) {
        showError(error);
      }
    });
    socket.addEventListener("close", () => {
      if (state.socket !== socket || state.stopped) return;
      state.stale = true;
      const delay = Math.min(10000, 500 * 2 ** state.retries++);
      setConnection("retrying", `Connection lost; retrying in ${Math.round(delay / 1000)} s`);
      window.setTimeout(connect, delay);
    });
  }

  function handle(message) {
    if (message.type === "events") {
      const newest = state.recent.length ? state.recent[0].seq : 0;
      const mine = (item) => state.device === null || item.device_id === state.device;
      const fresh = message.items.filter((item) => item.seq > newest && mine(item)).reverse(); // newest first
      // A device's events are not consecutive in seq: only the whole set's gaps are seen as missed events.
      if (state.device === null) state.total = Math.max(state.total, message.total);
      else state.total += fresh.length;
      if (state.device === null && message.first_seq > newest + 1 && message.items.length < RECENT && newest > 0) {
        loadRecent().catch(showError); // missed some: the API has them
      } else {
        state.recent = fresh.concat(state.recent).slice(0, RECENT);
        renderRecent(new Set(fresh.map((item) => item.id)));
      }
      renderCounters();
    } else if (message.type === "energy") {
      handleEnergy(message);
    } else if (message.type === "settled") {
      // From now on every change is announced to this page; one committed since its first reads may not have been.
      catchUp().catch(showError);
    } else if (message.type === "run") {
      const run = message.run;
      if (state.device !== null && run.device_id !== state.device) return; // another device's run
      state.runs.set(run.id, run);
      renderRuns();
      renderCounters();
      if (run.status === "done" && (!state.current || run.threshold > state.current.threshold)) {
        // The new run labels events already on screen: fetch them again with their labels.
        Promise.all([loadCurrent(true), loadRecent()]).then(renderCounters).catch(showError);
      }
    }
  }

  // ---------------------------------------------------------------------------------------------- energy

  const BUCKET_MS = 15 * 60 * 1000;
  const DAY_MS = 24 * 3600 * 1000;
  const ENERGY_PLOT = { width: 960, height: 300, left: 56, right: 56, top: 16, bottom: 40 };
  const POWER_PLOT = { width: 960, height: 200, left: 56, right: 56, top: 12, bottom: 28 };
  const energy = { device: null, start: null, days: 2, buckets: new Map(), power: null, reads: 0 };

  const isoUtc = (ms) => new Date(ms).toISOString().replace(".000Z", "Z");

  function energyWindow() {
    return { start: energy.start, end: energy.start + energy.days * DAY_MS };
  }

  async function loadDevice() {
    // The device's bars and power; a read issued later (another device or window, or a newer refresh) wins.
    const { start, end } = energyWindow();
    const query = `device_id=${energy.device}&start=${isoUtc(start)}&end=${isoUtc(end)}`;
    const read = ++energy.reads;
    const [series, power] = await Promise.all([api(`energy?${query}`), api(`energy/power?${query}`)]);
    if (read !== energy.reads) return;
    energy.buckets = new Map(series.data.map((item) => [Date.parse(item.datetime), item]));
    energy.power = power;
    renderEnergy();
    renderPower();
  }

  async function loadFleet() {
    const { start, end } = energyWindow();
    const range = `start=${isoUtc(start)}&end=${isoUtc(end)}`;
    const [fleet, top] = await Promise.all([api(`energy/fleet?${range}&resolution=1h`), api(`energy/top?count=5&${range}`)]);
    renderFleet(fleet, top);
  }

  async function loadEnergy() {
    if (energy.device === null) return;
    $("energy-status").textContent = "Loading…";
    await Promise.all([loadDevice(), loadFleet()]);
  }

  // At most one read a second, and always one that starts after the latest call (the trailing edge): the last
  // change of a burst is read, however the burst falls.
  function throttled(read) {
    let timer = null, last = 0;
    return () => {
      if (timer) return; // the read it will make starts after this call
      timer = window.setTimeout(() => {
        timer = null;
        last = Date.now();
        read().catch(showError);
      }, Math.max(0, last + 1000 - Date.now()));
    };
  }
  const refreshDevice = throttled(loadDevice);
  const refreshFleet = throttled(loadFleet);

  function handleEnergy(message) {
    // Buckets changed (POST /energy, or the feed of sensor events): the bars take them as they are; the power is
    // read again.
    if (energy.device === null) return;
    const { start, end } = energyWindow();
    let changed = false, inWindow = false;
    for (const item of message.items) {
      const at = Date.parse(item.datetime);
      if (at < start || at >= end) continue;
      inWindow = true;
      if (item.device_id === energy.device) {
        energy.buckets.set(at, item);
        changed = true;
      }
    }
    if (message.truncated) {
      loadEnergy().catch(showError);
      return;
    }
    if (changed) {
      renderEnergy();
      refreshDevice();
    }
    if (inWindow) refreshFleet();
  }

  function renderFleet(fleet, top) {
    const total = fleet.data.reduce((sum, step) => sum + step.sum, 0);
    $("fleet-total").textContent = `${fmtNum(total, 2)} kWh`;
    $("fleet-devices").textContent = fmtInt(Math.max(0, ...fleet.data.map((step) => step.devices)));
    $("energy-top").tBodies[0].replaceChildren(...top.data.map((entry) => {
      const row = document.createElement("tr");
      cell(row, String(entry.rank));
      cell(row, String(entry.device_id));
      cell(row, fmtNum(entry.kwh, 3));
      return row;
    }));
  }

  function renderEnergy() {
    const { start, end } = energyWindow();
    const n = Math.round((end - start) / BUCKET_MS);
    const w = ENERGY_PLOT.width - ENERGY_PLOT.left - ENERGY_PLOT.right;
    const h = ENERGY_PLOT.height - ENERGY_PLOT.top - ENERGY_PLOT.bottom;
    const items = [];
    for (let i = 0; i < n; i++) {
      items.push(energy.buckets.get(start + i * BUCKET_MS) || { datetime: isoUtc(start + i * BUCKET_MS), value: 0, coverage: 0, flags: [] });
    }
    const power = items.map((item) => (item.coverage > 0 ? item.value / (item.coverage * 0.25) : null));
    const maxKwh = Math.max(1e-9, ...items.map((item) => item.value));
    const maxKw = Math.max(1e-9, ...power.filter((p) => p !== null));
    const bw = w / n;
    const parts = [svg("defs", {})];
    const pattern = svg("pattern", { id: "partial-hatch", width: 5, height: 5, patternUnits: "userSpaceOnUse",
                                     patternTransform: "rotate(45)" });
    pattern.append(svg("rect", { width: 2, height: 5, fill: "#0072B2" }));
    parts[0].append(pattern);
    parts.push(svg("line", { class: "axis", x1: ENERGY_PLOT.left, y1: ENERGY_PLOT.top + h, x2: ENERGY_PLOT.left + w, y2: ENERGY_PLOT.top + h }));
    parts.push(svg("line", { class: "axis", x1: ENERGY_PLOT.left, y1: ENERGY_PLOT.top, x2: ENERGY_PLOT.left, y2: ENERGY_PLOT.top + h }));
    parts.push(svg("line", { class: "axis", x1: ENERGY_PLOT.left + w, y1: ENERGY_PLOT.top, x2: ENERGY_PLOT.left + w, y2: ENERGY_PLOT.top + h }));
    for (let i = 0; i <= 4; i++) {
      const y = ENERGY_PLOT.top + h - h * i / 4;
      parts.push(svg("text", { x: ENERGY_PLOT.left - 6, y, "text-anchor": "end", "dominant-baseline": "middle" }, fmtNum(maxKwh * i / 4, 3)));
      parts.push(svg("text", { x: ENERGY_PLOT.left + w + 6, y, "dominant-baseline": "middle" }, fmtNum(maxKw * i / 4, 2)));
    }
    parts.push(...dayLabels(ENERGY_PLOT, start));
    parts.push(svg("text", { x: 14, y: ENERGY_PLOT.top + h / 2, "text-anchor": "middle", transform: `rotate(-90 14 ${ENERGY_PLOT.top + h / 2})` }, "kWh"));
    parts.push(svg("text", { x: ENERGY_PLOT.width - 8, y: ENERGY_PLOT.top + h / 2, "text-anchor": "middle", transform: `rotate(90 ${ENERGY_PLOT.width - 8} ${ENERGY_PLOT.top + h / 2})` }, "kW"));
    let partial = 0;
    items.forEach((item, i) => {
      if (item.coverage <= 0) return;
      const barHeight = h * item.value / maxKwh;
      const isPartial = item.coverage < 1;
      if (isPartial) partial += 1;
      const bar = svg("rect", {
        class: isPartial ? "bar partial" : "bar", "data-datetime": item.datetime, "data-coverage": item.coverage,
        x: Math.round((ENERGY_PLOT.left + i * bw) * 10) / 10, width: Math.max(0.5, Math.round(bw * 0.9 * 10) / 10),
        y: Math.round((ENERGY_PLOT.top + h - barHeight) * 10) / 10, height: Math.max(0.5, Math.round(barHeight * 10) / 10),
      });
      bar.append(svg("title", {}, `${item.datetime}: ${fmtNum(item.value, 4)} kWh, coverage ${fmtNum(item.coverage * 100)} %` +
                                  (item.flags.length ? ` (${item.flags.join(", ")})` : "")));
      parts.push(bar);
    });
    let d = "";
    power.forEach((p, i) => {
      if (p === null) return;
      const x0 = ENERGY_PLOT.left + i * bw, x1 = x0 + bw, y = ENERGY_PLOT.top + h - h * p / maxKw;
      d += `${power[i - 1] === null || i === 0 ? "M" : "L"}${x0.toFixed(1)} ${y.toFixed(1)}H${x1.toFixed(1)}`;
    });
    if (d) parts.push(svg("path", { class: "power", d }));
    $("energy-chart").replaceChildren(...parts);
    const total = items.reduce((sum, item) => sum + item.value, 0);
    $("energy-status").textContent = `Device ${energy.device}: ${fmtNum(total, 3)} kWh from ${isoUtc(start)} to ${isoUtc(end)}.`;
    const covered = items.filter((item) => item.coverage > 0).length;
    $("energy-chart-desc").textContent = `${fmtInt(covered)} of ${fmtInt(n)} quarter hours have readings, ${fmtInt(partial)} of them partial.`;
  }

  function dayLabels(plot, start) {
    const w = plot.width - plot.left - plot.right;
    const out = [];
    for (let d = 0; d <= energy.days; d++) {
      out.push(svg("text", { x: plot.left + w * d / energy.days, y: plot.height - plot.bottom + 16, "text-anchor": "middle" },
                   isoUtc(start + d * DAY_MS).slice(5, 10)));
    }
    return out;
  }

  function renderPower() {
    // Steps of held power; a gap (or the time before the first reading) is no step, so the line breaks there.
    const { start, end } = energyWindow();
    const P = POWER_PLOT;
    const w = P.width - P.left - P.right, h = P.height - P.top - P.bottom;
    const steps = energy.power ? energy.power.data : [];
    const maxKw = Math.max(1e-9, ...steps.map((step) => step.value));
    const x = (ms) => (P.left + w * (ms - start) / (end - start)).toFixed(1);
    const y = (kw) => (P.top + h - h * kw / maxKw).toFixed(1);
    const parts = [
      svg("line", { class: "axis", x1: P.left, y1: P.top + h, x2: P.left + w, y2: P.top + h }),
      svg("line", { class: "axis", x1: P.left, y1: P.top, x2: P.left, y2: P.top + h }),
      svg("text", { x: 14, y: P.top + h / 2, "text-anchor": "middle", transform: `rotate(-90 14 ${P.top + h / 2})` }, "kW"),
      ...dayLabels(P, start),
    ];
    for (let i = 0; i <= 4; i++) {
      parts.push(svg("text", { x: P.left - 6, y: y(maxKw * i / 4), "text-anchor": "end", "dominant-baseline": "middle" },
                     fmtNum(maxKw * i / 4, 2)));
    }
    let d = "", previousEnd = null;
    for (const step of steps) {
      const from = Date.parse(step.datetime), to = Date.parse(step.end);
      d += `${previousEnd === from ? "L" : "M"}${x(from)} ${y(step.value)}H${x(to)}`;
      previousEnd = to;
    }
    const last = steps[steps.length - 1];
    if (d) {
      const line = svg("path", { class: "power", d, "data-steps": steps.length, "data-last-value": last.value,
                                 "data-last-end": last.end });
      line.append(svg("title", {}, `${steps.length} steps; latest ${fmtNum(last.value, 3)} kW until ${last.end}`));
      parts.push(line);
    }
    $("power-chart").replaceChildren(...parts);
    $("power-chart-desc").textContent = last
      ? `${fmtInt(steps.length)} ${energy.power.resolution === "readings" ? "readings' intervals" : "quarter-hour averages"}, ` +
        `peak ${fmtNum(maxKw, 3)} kW, latest ${fmtNum(last.value, 3)} kW until ${last.end}.`
      : "No readings in the window.";
  }

  function initEnergy() {
    const today = new Date();
    const startOfDay = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate());
    $("energy-start").value = isoUtc(startOfDay - DAY_MS).slice(0, 10);
    $("energy-form").addEventListener("submit", (event) => {
      event.preventDefault();
      showEnergy().catch(showError);
    });
  }

  async function showEnergy() {
    energy.device = Number($("energy-device").value);
    energy.start = Date.parse(`${$("energy-start").value}T00:00:00Z`);
    energy.days = Number($("energy-days").value);
    await loadEnergy();
  }

  // ------------------------------------------------------------------------------------------- rendering

  const fmtInt = (n) => Number(n).toLocaleString("en-US");
  const fmtNum = (n, digits = 1) => Number(n).toLocaleString("en-US", { maximumFractionDigits: digits });

  // Colour and shape go by the appliance key, which a cluster keeps from run to run (MeanShift's label does not);
  // by the label only for a run without keys.
  function mark(label, key) {
    return key === null || key === undefined ? label : key - 1;
  }

  function colour(label, key) {
    return label === -1 ? UNCLUSTERED : PALETTE[mark(label, key) % PALETTE.length];
  }

  function shapeOf(label, key) {
    return label === -1 ? "cross" : SHAPES[mark(label, key) % SHAPES.length];
  }

  function labelText(label, key, name) {
    if (label === null || label === undefined) return "—";
    if (label === -1) return "unclustered";
    if (name) return name;
    return key === null || key === undefined ? `cluster ${label}` : `appliance ${key}`;
  }

  function swatch(label, key) {
    const span = document.createElement("span");
    span.className = label === -1 ? "swatch unclustered" : "swatch";
    if (label === -1) span.textContent = "×"; // as drawn in the plot
    else span.style.background = colour(label, key);
    span.setAttribute("aria-hidden", "true");
    return span;
  }

  function cell(row, content, className) {
    const td = document.createElement("td");
    if (content instanceof Node) td.append(content);
    else td.textContent = content;
    if (className) td.className = className;
    row.append(td);
    return td;
  }

  function setConnection(kind, text) {
    const element = $("connection");
    element.dataset.state = kind;
    element.textContent = text;
  }

  function latestRun() {
    let latest = null;
    for (const run of state.runs.values()) if (!latest || run.threshold > latest.threshold) latest = run;
    return latest;
  }

  function latestDone() {
    let latest = null;
    for (const run of state.runs.values()) {
      if (run.status === "done" && (!latest || run.threshold > latest.threshold)) latest = run;
    }
    return latest;
  }

  function renderCounters() {
    if (state.threshold === null && state.runs.size) {
      state.threshold = Math.min(...[...state.runs.values()].map((run) => run.threshold)); // the first run's
    }
    $("count-events").textContent = fmtInt(state.total);
    $("count-next").textContent = state.threshold ? fmtInt(state.threshold - (state.total % state.threshold)) : "–";
    const latest = latestRun();
    $("latest-run").textContent = latest ? `#${latest.id} at ${fmtInt(latest.threshold)}: ${latest.status}` : "none yet";
  }

  function renderRecent(fresh) {
    const body = $("events").tBodies[0];
    const rows = state.recent.map((item) => {
      const row = document.createElement("tr");
      if (fresh.has(item.id)) row.className = "fresh";
      cell(row, new Date(item.received_at).toLocaleTimeString());
      cell(row, String(item.device_id));
      cell(row, fmtNum(item.active_power_w));
      cell(row, fmtNum(item.reactive_power_var));
      cell(row, fmtNum(item.apparent_power_va));
      cell(row, fmtNum(item.current_a, 2));
      const label = cell(row, "");
      if (item.label !== null && item.label !== undefined) label.append(swatch(item.label, item.appliance_key));
      label.append(labelText(item.label, item.appliance_key, item.appliance_name));
      return row;
    });
    body.replaceChildren(...rows);
  }

  function renderClusters() {
    const body = $("clusters").tBodies[0];
    $("current-run").textContent = state.current
      ? `— run ${state.current.id}, ${fmtInt(state.current.events)} events, bandwidth ${fmtNum(state.current.bandwidth, 2)}`
      : "";
    $("clusters-empty").textContent = state.current ? ""
      : `No clustering yet: the first run starts at ${state.threshold ? fmtInt(state.threshold) : "the threshold"} events.`;
    body.replaceChildren(...state.clusters.map((cluster) => {
      const row = document.createElement("tr");
      const name = cell(row, "");
      name.append(swatch(cluster.label, cluster.appliance_key),
        labelText(cluster.label, cluster.appliance_key, cluster.appliance_name));
      cell(row, fmtInt(cluster.events));
      cell(row, `${fmtNum(cluster.share * 100)} %`);
      cell(row, `${fmtNum(cluster.mean_active_power_w)} W`);
      return row;
    }));
    const legend = $("legend");
    legend.replaceChildren(...state.clusters.map((cluster) => {
      const li = document.createElement("li");
      const text = labelText(cluster.label, cluster.appliance_key, cluster.appliance_name);
      li.append(swatch(cluster.label, cluster.appliance_key),
        cluster.label === -1 ? "unclustered (×)" : `${text} (${shapeOf(cluster.label, cluster.appliance_key)})`);
      return li;
    }));
  }

  function renderRuns() {
    const runs = [...state.runs.values()].sort((a, b) => b.threshold - a.threshold);
    $("runs").tBodies[0].replaceChildren(...runs.map((run) => {
      const row = document.createElement("tr");
      cell(row, `#${run.id}`);
      cell(row, fmtInt(run.threshold));
      cell(row, run.status + (run.error ? `: ${run.error}` : ""));
      cell(row, run.clusters === null ? "—" : String(run.clusters));
      const t = run.timings || {};
      const duration = t.started_at && t.finished_at ? (Date.parse(t.finished_at) - Date.parse(t.started_at)) / 1000 : null;
      cell(row, duration === null ? "—" : `${fmtNum(duration, 2)} s`);
      return row;
    }));
  }

  function point(item) {
    const peaks = item.peaks || [];
    return {
      label: item.label, key: item.appliance_key,
      active_power_w: item.active_power_w, reactive_power_var: item.reactive_power_var,
      apparent_power_va: item.apparent_power_va, current_a: item.current_a, voltage_v: item.voltage_v,
      peak_1: peaks[0], peak_2: peaks[1], peak_3: peaks[2],
    };
  }

  function marker(shape, x, y) {
    // One subpath per point, so a whole label is a single <path> even for tens of thousands of events.
    const r = 3.2;
    switch (shape) {
      case "square": return `M${x - r} ${y - r}h${2 * r}v${2 * r}h${-2 * r}z`;
      case "triangle": return `M${x} ${y - r - 0.8}l${r + 0.8} ${2 * r}h${-2 * r - 1.6}z`;
      case "diamond": return `M${x} ${y - r - 0.8}l${r + 0.8} ${r + 0.8}l${-r - 0.8} ${r + 0.8}l${-r - 0.8} ${-r - 0.8}z`;
      case "cross": return `M${x - r} ${y - r}l${2 * r} ${2 * r}M${x + r} ${y - r}l${-2 * r} ${2 * r}`;
      default: return `M${x - r} ${y}a${r} ${r} 0 1 0 ${2 * r} 0a${r} ${r} 0 1 0 ${-2 * r} 0`;
    }
  }

  function extent(values) {
    let low = Infinity, high = -Infinity;
    for (const v of values) { if (v < low) low = v; if (v > high) high = v; }
    if (!Number.isFinite(low)) return [0, 1];
    if (low === high) return [low - 1, high + 1];
    const pad = (high - low) * 0.04;
    return [low - pad, high + pad];
  }

  function svg(name, attributes, text) {
    const element = document.createElementNS("http://www.w3.org/2000/svg", name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
    if (text !== undefined) element.textContent = text;
    return element;
  }

  let scatterQueued = false;
  function renderScatter() {
    if (scatterQueued) return;
    scatterQueued = true;
    window.requestAnimationFrame(() => { scatterQueued = false; drawScatter(); });
  }

  function drawScatter() {
    const xKey = $("x-axis").value, yKey = $("y-axis").value;
    const xName = FEATURES.find(([k]) => k === xKey)[1], yName = FEATURES.find(([k]) => k === yKey)[1];
    const [x0, x1] = extent(state.points.map((p) => p[xKey]));
    const [y0, y1] = extent(state.points.map((p) => p[yKey]));
    const w = PLOT.width - PLOT.left - PLOT.right, h = PLOT.height - PLOT.top - PLOT.bottom;
    // Rounded to 0.1 px (short path strings), and kept numbers: marker() adds to them.
    const sx = (v) => Math.round((PLOT.left + (v - x0) / (x1 - x0) * w) * 10) / 10;
    const sy = (v) => Math.round((PLOT.top + h - (v - y0) / (y1 - y0) * h) * 10) / 10;
    const parts = [
      svg("line", { class: "axis", x1: PLOT.left, y1: PLOT.top + h, x2: PLOT.left + w, y2: PLOT.top + h }),
      svg("line", { class: "axis", x1: PLOT.left, y1: PLOT.top, x2: PLOT.left, y2: PLOT.top + h }),
      svg("text", { x: PLOT.left + w / 2, y: PLOT.height - 6, "text-anchor": "middle" }, xName),
      svg("text", { x: 14, y: PLOT.top + h / 2, "text-anchor": "middle", transform: `rotate(-90 14 ${PLOT.top + h / 2})` }, yName),
    ];
    for (let i = 0; i <= 4; i++) {
      const xv = x0 + (x1 - x0) * i / 4, yv = y0 + (y1 - y0) * i / 4;
      parts.push(svg("text", { x: sx(xv), y: PLOT.top + h + 16, "text-anchor": "middle" }, fmtNum(xv)));
      parts.push(svg("text", { x: PLOT.left - 6, y: sy(yv), "text-anchor": "end", "dominant-baseline": "middle" }, fmtNum(yv)));
    }
    const byLabel = new Map(), keyOf = new Map();
    for (const p of state.points) {
      if (!byLabel.has(p.label)) byLabel.set(p.label, []);
      keyOf.set(p.label, p.key);
      byLabel.get(p.label).push(marker(shapeOf(p.label, p.key), sx(p[xKey]), sy(p[yKey])));
    }
    // Unclustered first, so the clusters are drawn over them.
    const labels = [...byLabel.keys()].sort((a, b) => (a === -1 ? -1 : b === -1 ? 1 : a - b));
    for (const label of labels) {
      const unclustered = label === -1;
      parts.push(svg("path", {
        d: byLabel.get(label).join(""), "data-label": label,
        fill: unclustered ? "none" : colour(label, keyOf.get(label)), "fill-opacity": unclustered ? 0 : 0.75,
        stroke: colour(label, keyOf.get(label)), "stroke-width": unclustered ? 1.2 : 0.4,
      }));
    }
    $("scatter").replaceChildren(...parts);
    $("scatter-desc").textContent = state.current
      ? `${fmtInt(state.points.length)} of ${fmtInt(state.current.events)} events of run ${state.current.id}: ${yName} against ${xName}, ` +
        `coloured and shaped by cluster; unclustered events are grey crosses.`
      : "No run yet.";
  }

  function showError(error) {
    if (error instanceof AuthError) {
      stop();
      sessionStorage.removeItem(TOKEN_KEY);
      $("login-error").textContent = error.message;
      $("login").hidden = false;
      $("board").hidden = true;
      $("token").focus();
      return;
    }
    setConnection("error", `Error: ${error.message}`);
    console.error(error);
  }

  // ------------------------------------------------------------------------------------------- start, stop

  async function start(token) {
    state.token = token;
    state.stopped = false;
    state.total = 0;
    state.threshold = null;
    state.current = null;
    setConnection("connecting", "Connecting…");
    try {
      await Promise.all([loadRecent(), loadRuns(), ...panels.map((panel) => panel.start(state.token, api))]);
      sessionStorage.setItem(TOKEN_KEY, token);
      $("login").hidden = true;
      $("board").hidden = false;
      $("login-error").textContent = "";
      renderCounters();
      connect();
      // The plot's events arrive page by page after the page is usable.
      await loadCurrent(false);
      renderCounters();
      await showEnergy();
    } catch (error) {
      showError(error);
    }
  }

  function stop() {
    state.stopped = true;
    for (const panel of panels) panel.stop();
    if (state.socket) state.socket.close();
    state.socket = null;
    setConnection("idle", "Not connected");
  }

  async function init() {
    for (const id of ["x-axis", "y-axis"]) {
      $(id).replaceChildren(...FEATURES.map(([key, name]) => new Option(name, key)));
      $(id).addEventListener("change", renderScatter);
    }
    initEnergy();
    $("x-axis").value = "active_power_w";
    $("y-axis").value = "reactive_power_var";
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      start($("token").value.trim());
    });
    $("disconnect").addEventListener("click", () => {
      stop();
      sessionStorage.removeItem(TOKEN_KEY);
      $("board").hidden = true;
      $("login").hidden = false;
      $("token").value = "";
      $("token").focus();
    });
    const config = await (await fetch("dashboard/config.json")).json();
    state.wsUrl = config.websocket_url;
    if (config.cluster_scope === "device") {
      const device = new URLSearchParams(window.location.search).get("device_id");
      if (device === null || !/^-?[0-9]+$/.test(device)) {
        // Every clustering route needs a device here: say how to choose one rather than show errors.
        $("login-error").textContent = "This deployment clusters each device on its own: open this page with " +
          "?device_id=N (the device to show) in its address.";
        return;
      }
      state.device = Number(device);
      document.title = `wattprint: device ${state.device}`;
      $("clusters-title").prepend(`Device ${state.device}: `);
    }
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) start(saved);
    else $("token").focus();
  }

  init().catch(showError);
})();
