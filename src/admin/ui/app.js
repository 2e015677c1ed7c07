// FastMCP approvals console. Plain JavaScript, no dependencies, no build step.
//
// The credential lives in this closure only (never in storage, a URL or the DOM after
// sign-in) and goes out as `Authorization: Bearer`. Live streams are read with fetch() and
// a stream reader (EventSource cannot send headers). Everything shown is set with
// textContent: no HTML from the server is ever interpreted.
"use strict";

(function () {
  let token = null;
  let clockOffset = 0; // server now - local now, seconds
  let me = null; // the /admin/session answer
  let aborter = null;
  const holds = new Map(); // id -> {data, el}
  const mine = new Map(); // id -> "approved" | "denied": what this page decided

  const $ = (id) => document.getElementById(id);
  const now = () => Date.now() / 1000 + clockOffset;

  function text(el, value) {
    el.textContent = value == null ? "" : String(value);
  }

  async function api(method, path, body) {
    const headers = { Authorization: "Bearer " + token };
    const init = { method, headers, cache: "no-store", credentials: "omit" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const r = await fetch(path, init);
    let json = null;
    try {
      json = await r.json();
    } catch (_) {
      json = null;
    }
    return { status: r.status, json };
  }

  function errorText(res) {
    const e = res.json && res.json.error;
    if (!e) return "request failed (HTTP " + res.status + ")";
    const reasons = e.details && e.details.reasons ? " [" + e.details.reasons.join(", ") + "]" : "";
    return e.message + reasons;
  }

  // ------------------------------------------------------------------ sign-in
  async function signIn(ev) {
    ev.preventDefault();
    const value = $("token").value.trim();
    text($("signin-error"), "");
    if (!value) {
      text($("signin-error"), "Paste a token first.");
      return;
    }
    token = value;
    const res = await api("GET", "/admin/session");
    if (res.status !== 200) {
      token = null;
      text($("signin-error"), errorText(res));
      return;
    }
    $("token").value = "";
    me = res.json;
    clockOffset = me.now - Date.now() / 1000;
    const who = me.actor ? (me.actor.kind === "admin_token" ? "admin token" : me.actor.sub + " (" + me.actor.tenant + ")") : "?";
    text($("whoami"), who + (me.scope === "tenant" ? " · tenant approver" : " · platform-wide"));
    text($("revision"), me.policy_revision + (me.shadow ? " (shadow loaded)" : ""));
    $("signin-panel").hidden = true;
    $("session").hidden = false;
    $("console").hidden = false;
    aborter = new AbortController();
    follow("/admin/holds/stream", {}, onHoldEvent, aborter.signal);
    const from = Math.max(0, (me.audit_last_seq || 0) - 500);
    follow("/admin/audit/stream", { "Last-Event-ID": String(from) }, onAuditEvent, aborter.signal);
  }

  function signOut() {
    token = null;
    me = null;
    if (aborter) aborter.abort();
    holds.clear();
    mine.clear();
    $("holds").replaceChildren();
    $("resolved").replaceChildren();
    $("decisions").replaceChildren();
    $("console").hidden = true;
    $("session").hidden = true;
    $("signin-panel").hidden = false;
  }

  // ------------------------------------------------------------------ SSE over fetch
  async function follow(path, extra, onEvent, signal) {
    let backoff = 1000;
    while (!signal.aborted && token) {
      try {
        const headers = Object.assign({ Authorization: "Bearer " + token, Accept: "text/event-stream" }, extra);
        const r = await fetch(path, { headers, signal, cache: "no-store", credentials: "omit" });
        if (r.status !== 200) {
          let body = null;
          try {
            body = await r.json();
          } catch (_) {}
          setLive(false, errorText({ status: r.status, json: body }));
          if (r.status === 401 || r.status === 403) return;
        } else {
          setLive(true);
          backoff = 1000;
          await readEvents(r.body.getReader(), onEvent);
        }
      } catch (e) {
        if (signal.aborted) return;
        setLive(false, "disconnected");
      }
      await new Promise((ok) => setTimeout(ok, backoff));
      backoff = Math.min(backoff * 2, 10000);
      // A resumed audit stream would repeat records: start from now instead.
      delete extra["Last-Event-ID"];
    }
  }

  async function readEvents(reader, onEvent) {
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buf.search(/\r?\n\r?\n/)) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut).replace(/^\r?\n\r?\n/, "");
        let name = "message";
        const data = [];
        for (const line of block.split(/\r?\n/)) {
          if (line.startsWith(":")) continue;
          const i = line.indexOf(":");
          const field = i < 0 ? line : line.slice(0, i);
          const val = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
          if (field === "event") name = val;
          else if (field === "data") data.push(val);
        }
        if (data.length) {
          try {
            onEvent(name, JSON.parse(data.join("\n")));
          } catch (_) {}
        }
      }
    }
  }

  function setLive(up, why) {
    const el = $("live");
    el.className = "live " + (up ? "up" : "down");
    text(el, up ? "live" : why || "offline");
  }

  // ------------------------------------------------------------------ holds
  function onHoldEvent(name, data) {
    if (name === "snapshot") {
      clockOffset = data.now - Date.now() / 1000;
      const ids = new Set(data.holds.map((h) => h.id));
      for (const id of [...holds.keys()]) if (!ids.has(id)) resolve(id, "resolved");
      for (const h of data.holds) upsert(h);
    } else if (name === "created" || name === "updated") {
      upsert(data);
    } else if (name === "removed") {
      resolve(data.id, data.why);
    } else if (name === "error") {
      setLive(false, data.message);
    }
    text($("pending-count"), holds.size);
    $("holds-empty").hidden = holds.size > 0;
  }

  function upsert(h) {
    let entry = holds.get(h.id);
    if (!entry) {
      const el = $("hold-template").content.firstElementChild.cloneNode(true);
      el.dataset.id = h.id;
      el.querySelector(".approve").addEventListener("click", () => decide(h.id, true));
      el.querySelector(".deny").addEventListener("click", () => decide(h.id, false));
      entry = { data: h, el };
      holds.set(h.id, entry);
      $("holds").prepend(el);
    }
    entry.data = h;
    const el = entry.el;
    text(el.querySelector(".tool"), h.toolId);
    const where = [h.server ? "server " + h.server : null, h.provider ? "provider " + h.provider : null];
    text(el.querySelector(".where"), where.filter(Boolean).join(" · "));
    text(el.querySelector(".who"), h.sub + " (tenant " + h.tenant + ")");
    text(el.querySelector(".agent"), h.agent || "—");
    text(el.querySelector(".rules"), (h.rules || []).join(", ") || "—");
    const tags = el.querySelector(".tags");
    tags.replaceChildren();
    for (const t of h.risk_tags || []) {
      const span = document.createElement("span");
      span.className = "tag";
      text(span, t);
      tags.append(span);
    }
    if (!tags.childElementCount) text(tags, "—");
    text(el.querySelector(".hold-id"), h.id + (h.needs_approval ? " · needs an approver" : ""));
    text(el.querySelector(".args"), h.arguments == null ? "(too large to show)" : JSON.stringify(h.arguments, null, 2));
    if (h.approved_by) {
      el.classList.add("approved");
      text(el.querySelector(".status"), "approved by " + h.approved_by + " — waiting for the agent to confirm");
      for (const b of el.querySelectorAll("button")) b.disabled = true;
    }
    tick();
  }

  function resolve(id, why) {
    const entry = holds.get(id);
    if (!entry) return;
    holds.delete(id);
    const el = entry.el;
    const decided = mine.get(id);
    let word;
    if (why === "expired") {
      el.classList.add("expired");
      word = "expired: the call did not run";
    } else if (decided === "denied") {
      el.classList.add("denied");
      word = "denied: the call did not run";
    } else if (entry.data.approved_by) {
      el.classList.add("done");
      word = "done: approved by " + entry.data.approved_by + "; the agent's call was released";
    } else {
      el.classList.add("done");
      word = "resolved (confirmed, declined or denied elsewhere; see recent decisions)";
    }
    el.classList.remove("approved");
    for (const b of el.querySelectorAll("button, input")) b.disabled = true;
    text(el.querySelector(".status"), word);
    text(el.querySelector(".ttl"), "");
    $("resolved").prepend(el);
    text($("pending-count"), holds.size);
    $("holds-empty").hidden = holds.size > 0;
  }

  async function decide(id, approve) {
    const entry = holds.get(id);
    if (!entry) return;
    const el = entry.el;
    const reason = el.querySelector(".reason").value.trim();
    text(el.querySelector(".error"), "");
    if (!reason) {
      text(el.querySelector(".error"), "Give a reason: it goes into the audit record.");
      return;
    }
    for (const b of el.querySelectorAll("button")) b.disabled = true;
    const verb = approve ? "approve" : "deny";
    let res;
    try {
      res = await api("POST", "/admin/holds/" + encodeURIComponent(id) + "/" + verb, { reason });
    } catch (e) {
      res = { status: 0, json: null };
    }
    if (res.status === 200) {
      mine.set(id, approve ? "approved" : "denied");
      text(el.querySelector(".status"), approve ? "approved — waiting for the agent to confirm" : "denied");
      if (!approve) resolve(id, "denied");
    } else {
      text(el.querySelector(".error"), "Refused: " + errorText(res));
      for (const b of el.querySelectorAll("button")) b.disabled = false;
    }
  }

  function tick() {
    const t = now();
    for (const { data, el } of holds.values()) {
      const left = Math.max(0, Math.floor(data.expires_at - t));
      text(el.querySelector(".ttl"), Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0") + " left");
    }
  }

  // ------------------------------------------------------------------ recent decisions
  const SHOWN = new Set(["hold", "approved", "rejected", "confirmed", "declined"]);

  function onAuditEvent(name, rec) {
    // One line per decision: a confirmed call's completion record repeats its result.
    if (name !== "audit" || !rec.decision || rec.phase === "completion") return;
    const result = rec.decision.result;
    if (!SHOWN.has(result) && rec.action !== "holds.decide") return;
    const li = document.createElement("li");
    li.className = "decision";
    li.dataset.result = result;
    const by = rec.actor ? " by " + (rec.actor.sub || rec.actor.kind) : "";
    const why = rec.reason ? " — “" + rec.reason + "”" : "";
    const code = rec.outcome && rec.outcome.error_code ? " (" + rec.outcome.error_code + ")" : "";
    text(li, (rec.ts || "") + "  " + result + code + "  " + (rec.toolId || rec.action) + "  for " + rec.sub + "@" + rec.tenant + by + why);
    const list = $("decisions");
    list.prepend(li);
    while (list.childElementCount > 50) list.lastElementChild.remove();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", signIn);
    $("signout").addEventListener("click", signOut);
    setInterval(tick, 1000);
  });
})();
