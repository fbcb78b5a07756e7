// wattprint dashboard: the alerts panel. Open and recent alerts from GET /alerts, new ones as `alert` messages
// on the live channel, and Acknowledge (POST /alerts/{id}/ack), which stops an alert's repeats.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const alerts = new Map(); // id → alert
  let token = null;

  const when = (iso) => (iso ? new Date(iso).toISOString().slice(0, 16).replace("T", " ") + " UTC" : "");
  const kwh = (wh) => (wh / 1000).toLocaleString("en-US", { maximumFractionDigits: 2 });

  function render() {
    const rows = [...alerts.values()].sort((a, b) => (b.fired_at > a.fired_at ? 1 : b.fired_at < a.fired_at ? -1 : b.id - a.id));
    $("alerts-empty").hidden = rows.length > 0;
    $("alerts").querySelector("tbody").replaceChildren(...rows.map((alert) => {
      const row = document.createElement("tr");
      row.dataset.status = alert.status;
      const cells = [`Device ${alert.device_id}`, alert.status === "firing" ? (alert.acked_at ? "firing (acknowledged)" : "firing") : "resolved",
        when(alert.fired_at), alert.direction === "low" ? "unusually low use" : "unusual use", kwh(alert.peak_wh)];
      for (const text of cells) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      const action = document.createElement("td");
      if (alert.status === "firing" && !alert.acked_at) {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = "Acknowledge";
        button.setAttribute("aria-label", `Acknowledge the alert on device ${alert.device_id}`);
        button.addEventListener("click", () => acknowledge(alert.id, button));
        action.append(button);
      }
      row.append(action);
      return row;
    }));
  }

  async function acknowledge(id, button) {
    button.disabled = true;
    const response = await fetch(`alerts/${id}/ack`, { method: "POST", headers: { Authorization: `Bearer ${token}` } });
    if (response.ok) {
      alerts.set(id, await response.json());
      $("alerts-announce").textContent = `Alert ${id} acknowledged: no more repeats.`;
      render();
    } else {
      button.disabled = false;
      $("alerts-announce").textContent = `Could not acknowledge alert ${id} (HTTP ${response.status}).`;
    }
  }

  window.wattprintPanels = window.wattprintPanels || [];
  window.wattprintPanels.push({
    async start(readToken, api) {
      token = readToken;
      const body = await api("alerts");
      alerts.clear();
      for (const alert of body.items) alerts.set(alert.id, alert);
      render();
    },
    message(message) {
      if (message.type !== "alert") return;
      const told = message.alert;
      $("alerts-announce").textContent = told.text;
      // The notification says what happened; the alert's own row comes from the API.
      fetch(`alerts?device_id=${told.device_id}`, { headers: { Authorization: `Bearer ${token}` } })
        .then((response) => (response.ok ? response.json() : { items: [] }))
        .then((body) => {
          for (const alert of body.items) alerts.set(alert.id, alert);
          render();
        });
    },
    stop() {
      token = null;
      alerts.clear();
    },
  });
})();
