// The approvals page: log in with a token, list held requests, approve or
// deny them; server-sent events keep it current without reloading.
"use strict";

const api = async (method, path, body) => {
  const res = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-Sluice-Request": "1" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = res.status === 204 ? null : await res.json();
  if (!res.ok) {
    const err = new Error((data && data.error) || res.statusText);
    err.status = res.status;
    throw err;
  }
  return data;
};

const $ = (sel, root = document) => root.querySelector(sel);

function text(el, value) {
  el.textContent = value === undefined || value === null ? "" : String(value);
}

function card(req) {
  const node = $("#card").content.firstElementChild.cloneNode(true);
  node.dataset.id = req.id;
  node.dataset.testid = "request-" + req.id;
  node.classList.add(req.status);
  text($(".status", node), req.status);
  text($(".target", node), req.target);
  text($(".requester", node), "by " + req.requester);
  const deadline = new Date(req.deadline);
  text($(".deadline", node), req.status === "pending" ? "decide by " + deadline.toLocaleTimeString() : "");
  text($(".operation", node), req.operation);
  text($(".reason", node), req.reason);
  const d = req.detail || {};
  const p = d.process || {};
  text($(".process", node), `${p.exe || p.comm || "?"} (pid ${p.pid}, uid ${p.uid})` +
    (p.cmdline && p.cmdline.length ? "\n" + p.cmdline.join(" ") : ""));
  text($(".parents", node), (p.parents || []).map(x => `${x.exe || x.comm} (${x.pid})`).join(" ← "));
  const id = d.identity || {};
  text($(".job", node), `${req.job} on ${d.host || "?"}, ${id.issuer || ""}`);
  text($(".reviewers", node), (req.reviewers || []).join(", "));
  if (req.status === "pending") {
    $(".outcome", node).parentElement.removeChild($(".outcome", node).previousElementSibling);
    $(".outcome", node).remove();
    $(".approve", node).addEventListener("click", () => decide(req.id, true, node));
    $(".deny", node).addEventListener("click", () => decide(req.id, false, node));
  } else {
    $(".actions", node).remove();
    text($(".outcome", node), `${req.status} by ${req.decided_by || "?"}` +
      (req.outcome_reason ? ": " + req.outcome_reason : "") +
      (req.window_until ? ` (window until ${new Date(req.window_until).toLocaleTimeString()})` : ""));
  }
  return node;
}

async function decide(id, approve, node) {
  const reason = $(".reason-input", node).value.trim();
  const window = $(".window", node).value;
  $("#error").textContent = "";
  if (!approve && !reason) {
    $("#error").textContent = "Give a reason to deny.";
    $(".reason-input", node).focus();
    return;
  }
  try {
    await api("POST", `/v1/approvals/${encodeURIComponent(id)}/${approve ? "approve" : "deny"}`,
      { reason, window });
  } catch (e) {
    $("#error").textContent = e.message;
  }
  await refresh();
}

async function refresh() {
  try {
    const [pending, all] = await Promise.all([
      api("GET", "/v1/approvals?status=pending"),
      api("GET", "/v1/approvals?status=all"),
    ]);
    const list = $("#pending");
    list.replaceChildren(...pending.map(card));
    text($("#count"), pending.length ? `(${pending.length})` : "");
    if (!pending.length) {
      const p = document.createElement("p");
      p.textContent = "Nothing is waiting.";
      list.append(p);
    }
    $("#recent").replaceChildren(...all.filter(r => r.status !== "pending").slice(0, 20).map(card));
  } catch (e) {
    if (e.status === 401) return showLogin();
    $("#error").textContent = e.message;
  }
}

let events;

function listen() {
  if (events) events.close();
  events = new EventSource("/v1/approvals/events");
  events.addEventListener("approval", () => refresh());
  events.onerror = () => { /* the browser reconnects by itself */ };
}

function showLogin() {
  $("#app").hidden = true;
  $("#login").hidden = false;
  $("#who").textContent = "";
}

async function start() {
  try {
    const who = await api("GET", "/v1/whoami");
    $("#who").textContent = `${who.subject} (${(who.groups || []).join(", ")})`;
    $("#login").hidden = true;
    $("#app").hidden = false;
    listen();
    await refresh();
  } catch (e) {
    showLogin();
  }
}

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("#login-error").textContent = "";
  try {
    await api("POST", "/v1/login", { token: $("#token").value.trim() });
    $("#token").value = "";
    await start();
  } catch (e) {
    $("#login-error").textContent = e.message;
  }
});

start();
