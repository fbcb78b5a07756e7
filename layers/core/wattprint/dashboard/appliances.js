// wattprint dashboard: the appliance states panel. Each device's appliances and the state each is in now, decoded
// live from the sensor events with the stored appliance models: GET /appliances/states, then `appliances` messages
// on the live channel ("PC screen1: ON since 12:03:04"). Naming is not done here: it needs an ingest token, which
// the page never holds (see the README).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const states = new Map(); // "device/appliance" → item
  let api = null;

  const key = (item) => `${item.device_id}/${item.appliance}`;
  const clock = (iso) => iso.slice(11, 19);
  const day = (iso) => iso.slice(0, 10);

  function render() {
    const devices = new Map();
    for (const item of [...states.values()].sort((a, b) => a.device_id - b.device_id
      || a.appliance.localeCompare(b.appliance))) {
      if (!devices.has(item.device_id)) devices.set(item.device_id, []);
      devices.get(item.device_id).push(item);
    }
    $("appliance-states-empty").hidden = devices.size > 0;
    const today = new Date().toISOString().slice(0, 10);
    $("appliance-states").replaceChildren(...[...devices].map(([device, items]) => {
      const block = document.createElement("div");
      block.className = "appliance-device";
      const title = document.createElement("h3");
      title.textContent = `Device ${device}`;
      const list = document.createElement("ul");
      list.setAttribute("aria-label", `Appliances of device ${device}`);
      list.append(...items.map((item) => {
        const row = document.createElement("li");
        row.dataset.state = item.state;
        row.dataset.appliance = item.appliance;
        const when = document.createElement("time");
        when.dateTime = item.since;
        when.title = `${day(item.since)} ${clock(item.since)} UTC (sensor time); last decoded ${clock(item.seen_at)}`;
        when.textContent = clock(item.since) + (day(item.since) === today ? "" : ` on ${day(item.since)}`);
        row.append(`${item.appliance}: ${item.state} since `, when);
        return row;
      }));
      block.append(title, list);
      return block;
    }));
  }

  function tell(items, unseen) {
    // The states that changed from what the panel showed (and, if `unseen`, the ones it had not shown), announced
    // once, whichever way they came.
    const told = [];
    for (const item of items) {
      const before = states.get(key(item));
      if (before ? before.state !== item.state : unseen) told.push(`${item.appliance}: ${item.state}`);
    }
    if (told.length) $("appliance-states-announce").textContent = told.join(", ");
  }

  async function load() {
    // At sign-in, and when the page catches up (a change read here may be pushed later too: told only once).
    const body = await api("appliances/states");
    tell(body.items, false);
    states.clear();
    for (const item of body.items) states.set(key(item), item);
    render();
  }

  window.wattprintPanels = window.wattprintPanels || [];
  window.wattprintPanels.push({
    async start(readToken, readApi) {
      api = readApi;
      await load();
    },
    message(message) {
      if (message.type !== "appliances") return;
      if (message.truncated) {
        load().catch(() => {}); // more changed than one message holds: the API has them all
        return;
      }
      tell(message.items, true);
      for (const item of message.items) states.set(key(item), item);
      render();
    },
    stop() {
      api = null;
      states.clear();
      render();
    },
  });
})();
