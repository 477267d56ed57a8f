// docflow dashboard: live updates (server-sent events), ages, and dead-letter actions.
(() => {
  "use strict";
  const token = document.querySelector('meta[name="docflow-token"]').content;
  const main = document.querySelector("main");
  const liveState = document.getElementById("live-state");

  const ageText = (s) =>
    s < 60 ? s + "s" : s < 3600 ? Math.floor(s / 60) + "m"
      : s < 86400 ? Math.floor(s / 3600) + "h" : Math.floor(s / 86400) + "d";
  const refreshAges = () => {
    const now = Date.now();
    document.querySelectorAll("[data-since]").forEach((el) => {
      el.textContent = ageText(Math.max(0, Math.floor((now - Number(el.dataset.since)) / 1000)));
    });
  };
  setInterval(refreshAges, 1000);

  if (main.dataset.live && window.EventSource) {
    const events = new EventSource(main.dataset.live);
    events.onopen = () => { liveState.textContent = "live"; liveState.className = "live-state on"; };
    events.onerror = () => { liveState.textContent = "reconnecting"; liveState.className = "live-state off"; };
    // A document row, new or changed: replaced in place, or added on top (newest first).
    events.addEventListener("row", (e) => {
      const { id, html } = JSON.parse(e.data);
      const holder = document.createElement("tbody");
      holder.innerHTML = html;
      const row = holder.firstElementChild;
      const old = document.getElementById("doc-" + id);
      if (old) old.replaceWith(row); else document.getElementById("rows").prepend(row);
      const none = document.getElementById("no-rows");
      if (none) none.hidden = true;
    });
    // A part of the page rendered again.
    events.addEventListener("replace", (e) => {
      const { target, html } = JSON.parse(e.data);
      const el = document.getElementById(target);
      if (el) el.innerHTML = html;
    });
  }

  // Resubmit or discard: the count shown is the count confirmed; the server acts on exactly
  // that many messages or on none.
  document.addEventListener("click", async (ev) => {
    const button = ev.target.closest("button[data-action]");
    if (!button) return;
    const holder = button.closest("[data-entity]");
    const action = button.dataset.action;
    const entity = holder.dataset.entity;
    const count = Number(holder.dataset.count);
    const body = { entity, count };
    if (holder.dataset.sequence) body.sequenceNumbers = [Number(holder.dataset.sequence)];
    else { body.reason = holder.dataset.reason; body.signature = holder.dataset.signature; }
    const question = action === "resubmit"
      ? `Resubmit ${count} message(s) to ${entity}?`
      : `Discard ${count} message(s) from the dead-letter queue of ${entity}? This cannot be undone.`;
    if (!window.confirm(question)) return;
    button.disabled = true;
    const flash = document.getElementById("flash");
    let answer = {};
    let ok = false;
    try {
      const r = await fetch("/api/dead-letters/" + action, {
        method: "POST",
        headers: { "content-type": "application/json", "x-docflow-token": token },
        body: JSON.stringify(body),
      });
      ok = r.ok;
      answer = await r.json().catch(() => ({ error: { message: r.statusText } }));
    } catch (err) {
      answer = { error: { message: String(err) } };
    }
    flash.hidden = false;
    if (ok) {
      flash.className = "ok";
      flash.textContent = action === "resubmit"
        ? `${answer.count} message(s) resubmitted to ${answer.place}`
        : `${answer.count} message(s) discarded from ${answer.place}`;
      if (holder.tagName === "TR") holder.remove();
    } else {
      flash.className = "problem";
      flash.textContent = (answer.error && answer.error.message) || "the action failed";
      button.disabled = false;
    }
  });
})();
