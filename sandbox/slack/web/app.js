// The sandbox page: fetches the workspace as the chosen user sees it, redraws on every
// server-sent "change", and turns clicks and typing into /sandbox/act/* requests (which
// the emulator delivers to the bot as signed Slack requests).

import { renderBlocks } from "./blocks.js";
import { DevPanel } from "./devpanel.js";
import { isReply, messageNode, tsCmp } from "./messages.js";
import { confirmDialog, ModalHost } from "./modal.js";
import { el } from "./mrkdwn.js";

const $ = (id) => document.getElementById(id);

const ui = {
  user: null,
  meId: null,
  view: { kind: "channel", ref: "general" }, // or {kind: "app", tab: "home" | "messages"}
  thread: null, // {channel, ts}
  state: null,
  dismissed: new Set(),
  seen: {}, // user -> channel -> number of top-level messages seen
  homeOpened: new Set(),
  highlight: null,
  tip: null, // the walkthrough command last put in the composer
  hint: null,
  ctx: { users: new Map(), channels: new Map(), groups: new Map() },
  shortcuts: [],
  botName: "Switchboard",
};

// ------------------------------------------------------------------ server calls

function toast(text, kind = "info") {
  const node = el("div", { class: `toast ${kind}` }, text);
  $("toasts").append(node);
  setTimeout(() => node.remove(), kind === "error" ? 7000 : 4000);
}

ui.act = async (action, body, { quiet = false } = {}) => {
  let result;
  try {
    const res = await fetch(`/sandbox/act/${action}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user: ui.user, ...body }),
    });
    result = await res.json();
  } catch (err) {
    toast("The sandbox server is not answering.", "error");
    return null;
  }
  if (!result.ok) toast(result.error || "That did not work.", "error");
  else if (quiet) {
    // Events (like app_home_opened) have no visible failure in Slack either.
  } else if (result.delivered && !result.timed_out && result.status && result.status !== 200)
    toast(`Switchboard answered HTTP ${result.status}: it does not handle this (yet).`, "error");
  else if (result.timed_out) toast("Switchboard did not answer within Slack's 3 seconds.", "error");
  scheduleRefresh();
  return result;
};

let refreshing = false;
let dirty = false;

async function refresh() {
  if (refreshing) {
    dirty = true;
    return;
  }
  refreshing = true;
  try {
    const res = await fetch(`/sandbox/state?user=${encodeURIComponent(ui.user || "")}`);
    if (res.ok) {
      ui.state = await res.json();
      render();
    }
  } finally {
    refreshing = false;
    if (dirty) {
      dirty = false;
      refresh();
    }
  }
}

function scheduleRefresh() {
  refresh();
  devpanel.poll(); // even when closed: the toggle shows how many exchanges there were
}

// ------------------------------------------------------------------ helpers for views

ui.blockCtx = (container) => ({
  ...ui.ctx,
  act: (action) => {
    if (container.kind === "view") return ui.act("click", { view_id: container.view_id, ...action });
    if (container.kind === "ephemeral") return ui.act("click", { ephemeral_ts: container.ts, ...action });
    return ui.act("click", { channel: container.channel, ts: container.ts, ...action });
  },
  confirm: (confirm) => confirmDialog(confirm, ui.ctx),
});

ui.react = (msg, name) => ui.act("react", { channel: msg.channel, ts: msg.ts, name });
ui.shortcut = (msg, callbackId) => ui.act("shortcut", { channel: msg.channel, ts: msg.ts, callback_id: callbackId });
ui.dismiss = (eph) => {
  ui.dismissed.add(`${eph.user}:${eph.ts}`);
  render();
};
ui.openThread = (msg) => {
  ui.thread = { channel: msg.channel, ts: msg.thread_ts || msg.ts };
  render();
  $("thread-input").focus();
};

function currentChannel() {
  const s = ui.state;
  if (!s) return null;
  if (ui.view.kind === "app") return s.channels.find((c) => c.id === s.app_dm) || null;
  return s.channels.find((c) => c.id === ui.view.ref || c.name === ui.view.ref) || null;
}

function ephemeralsIn(channelId, threadTs) {
  return ui.state.ephemerals.filter(
    (e) =>
      e.channel === channelId &&
      !ui.dismissed.has(`${e.user}:${e.ts}`) &&
      (threadTs ? e.thread_ts === threadTs : !e.thread_ts),
  );
}

function saveLocation() {
  const ref = ui.view.kind === "app" ? `app:${ui.view.tab}` : ui.view.ref;
  history.replaceState(null, "", `#user=${encodeURIComponent(ui.user)}&view=${encodeURIComponent(ref)}`);
}

function loadLocation() {
  const params = new URLSearchParams(location.hash.slice(1));
  ui.user = params.get("user");
  const view = params.get("view");
  if (view && view.startsWith("app:")) ui.view = { kind: "app", tab: view.slice(4) === "messages" ? "messages" : "home" };
  else if (view) ui.view = { kind: "channel", ref: view };
}

// ------------------------------------------------------------------ rendering

function render() {
  const s = ui.state;
  ui.user = s.me.name;
  ui.meId = s.me.id;
  ui.botName = s.bot.name;
  ui.shortcuts = s.shortcuts;
  ui.ctx = {
    users: new Map(s.users.map((u) => [u.id, u])),
    channels: new Map(s.channels.map((c) => [c.id, c])),
    groups: new Map(s.usergroups.map((g) => [g.id, g])),
  };
  $("team-name").textContent = s.team.name;
  renderConsoleLink(s.console);
  renderUsers();
  renderNav();
  renderGuide();
  renderMain();
  renderThread();
  modals.render(s.modal);
  saveLocation();
}

// The bot's console (the demo's): it signs in with Slack as the person acting here.
function renderConsoleLink(url) {
  const link = $("console-link");
  link.hidden = !url;
  if (url) {
    link.href = url;
    link.title = `Open the operator console, signed in as @${ui.user}`;
  }
}

function renderUsers() {
  const select = $("user-switch");
  const humans = ui.state.users.filter((u) => !u.is_bot);
  const wanted = humans.map((u) => `${u.name}|${u.real_name}|${u.role}`).join(",");
  if (select.dataset.users !== wanted) {
    select.replaceChildren(...humans.map((u) => el("option", { value: u.name }, u.real_name)));
    select.dataset.users = wanted;
  }
  select.value = ui.user;
  $("user-role").textContent = ui.state.me.role ? `@${ui.user} · ${ui.state.me.role}` : `@${ui.user}`;
}

function topLevel(channelId) {
  return (ui.state.messages[channelId] || []).filter((m) => !isReply(m) || m.subtype === "thread_broadcast");
}

function renderNav() {
  const s = ui.state;
  const seen = (ui.seen[ui.user] ||= {});
  const current = currentChannel();
  const item = (label, active, onclick, extra = {}) =>
    el("button", { type: "button", class: `nav-item${active ? " active" : ""}${extra.unread ? " unread" : ""}${extra.muted ? " muted-item" : ""}`, onclick }, label);
  const channels = s.channels.filter((c) => c.kind === "channel");
  const nav = [el("div", { class: "nav-section" }, "Channels")];
  for (const c of channels) {
    const count = topLevel(c.id).length;
    const active = ui.view.kind === "channel" && current && current.id === c.id;
    if (active) seen[c.id] = count;
    const unread = !active && c.is_member && count > (seen[c.id] ?? count);
    if (seen[c.id] === undefined) seen[c.id] = count;
    nav.push(
      item(`${c.is_private ? "🔒" : "#"} ${c.name}`, active, () => go({ kind: "channel", ref: c.name }), {
        unread,
        muted: !c.is_member,
      }),
    );
  }
  nav.push(el("div", { class: "nav-section" }, "Apps"));
  nav.push(
    item(
      el("span", {}, el("span", { class: "app-dot" }, "S"), ` ${s.bot.name}`),
      ui.view.kind === "app",
      () => go({ kind: "app", tab: "home" }),
    ),
  );
  $("nav").replaceChildren(...nav);
}

function go(view) {
  ui.view = view;
  ui.thread = null;
  render();
  if (view.kind === "app" && view.tab === "home") openHome();
  $("composer-input").focus();
}

function openHome() {
  // Slack sends app_home_opened each time the tab is opened; once per user per page load is enough here.
  if (ui.homeOpened.has(ui.user)) return;
  ui.homeOpened.add(ui.user);
  ui.act("home", {}, { quiet: true });
}

function renderGuide() {
  const tips = ui.state.walkthrough || [];
  const hidden = localStorage.getItem("sandbox.guide") === "hidden";
  $("guide").hidden = hidden || !tips.length;
  $("guide").replaceChildren(
    el("span", { class: "guide-title" }, "Try:"),
    // Titles keep the strip one line; a click puts the command in the composer.
    el("div", { class: "guide-tips" }, tips.map((tip, i) =>
      el(
        "button",
        {
          type: "button",
          class: `tip${ui.tip === tip.text ? " active" : ""}`,
          title: `${tip.text}\nas ${tip.user} in #${tip.channel}\n${tip.expect}`,
          onclick: () => tryTip(tip),
        },
        el("span", { class: "tip-number" }, String(i + 1)),
        tip.title,
      ),
    )),
    el("button", { type: "button", class: "icon-btn guide-close", "aria-label": "Hide guide", onclick: () => toggleGuide(false) }, "✕"),
  );
}

function toggleGuide(show) {
  localStorage.setItem("sandbox.guide", show ? "" : "hidden");
  renderGuide();
}

async function tryTip(tip) {
  if (tip.user !== ui.user) {
    ui.user = tip.user;
    await refresh();
  }
  ui.tip = tip.text;
  go({ kind: "channel", ref: tip.channel });
  $("composer-input").value = tip.text;
  updateHint(`As ${tip.user} in #${tip.channel}, press Enter. ${tip.expect}`);
  $("composer-input").focus();
}

function renderMain() {
  const s = ui.state;
  const header = $("main-header");
  const list = $("messages");
  const composer = $("composer");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 60;
  const channel = currentChannel();
  if (ui.view.kind === "app") {
    const tabs = ["home", "messages"].map((tab) =>
      el("button", { type: "button", class: `tab${ui.view.tab === tab ? " active" : ""}`, onclick: () => go({ kind: "app", tab }) }, tab === "home" ? "Home" : "Messages"),
    );
    header.replaceChildren(el("div", { class: "title" }, el("span", { class: "app-dot big" }, "S"), ` ${s.bot.name}`), el("div", { class: "tabs" }, tabs));
    if (ui.view.tab === "home") {
      composer.hidden = true;
      const home = s.home;
      list.replaceChildren(
        home
          ? el("div", { class: "home" }, renderBlocks(home.blocks, ui.blockCtx({ kind: "view", view_id: home.id })))
          : el("div", { class: "empty" }, `${s.bot.name} has not published a Home tab for ${s.me.real_name} yet.`),
      );
      return;
    }
  } else if (channel) {
    header.replaceChildren(
      el("div", { class: "title" }, `${channel.is_private ? "🔒" : "#"} ${channel.name}`),
      el("div", { class: "muted header-purpose" }, channel.purpose || channel.topic || ""),
      el("div", { class: "muted header-members" }, `${channel.members} members`),
    );
  } else {
    header.replaceChildren(el("div", { class: "title" }, "No such channel"));
  }
  composer.hidden = false;
  const input = $("composer-input");
  if (!channel || !channel.is_member) {
    list.replaceChildren(el("div", { class: "empty" }, channel ? `${s.me.real_name} is not a member of #${channel.name}.` : "Pick a channel on the left."));
    composer.hidden = true;
    return;
  }
  input.placeholder = channel.kind === "im" ? `Message ${s.bot.name}` : `Message #${channel.name}  (try /flow help)`;
  const items = [...topLevel(channel.id), ...ephemeralsIn(channel.id, null)].sort((a, b) => tsCmp(a.ts, b.ts));
  const replies = (ts) => (s.messages[channel.id] || []).filter((m) => isReply(m) && m.thread_ts === ts);
  const nodes = items.map((m) => messageNode(m, ui, { replies: m.source === undefined ? replies(m.ts) : [] }));
  if (!nodes.length) nodes.push(el("div", { class: "empty" }, `This is the very beginning of #${channel.name}.`));
  if (!channel.bot_member && channel.kind === "channel") {
    nodes.unshift(el("div", { class: "notice" }, `${s.bot.name} is not in #${channel.name}: it does not see messages here.`));
  }
  const scroll = list.scrollTop;
  list.replaceChildren(...nodes);
  list.scrollTop = atBottom ? list.scrollHeight : scroll;
}

function renderThread() {
  const pane = $("thread");
  const t = ui.thread;
  const msgs = t && ui.state.messages[t.channel];
  const parent = msgs && msgs.find((m) => m.ts === t.ts);
  if (!parent) {
    pane.classList.add("hidden");
    return;
  }
  pane.classList.remove("hidden");
  const channel = ui.ctx.channels.get(t.channel);
  $("thread-channel").textContent = channel ? (channel.kind === "im" ? "" : `#${channel.name}`) : "";
  const list = $("thread-messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 60;
  const replies = msgs.filter((m) => isReply(m) && m.thread_ts === t.ts);
  const items = [...replies, ...ephemeralsIn(t.channel, t.ts)].sort((a, b) => tsCmp(a.ts, b.ts));
  const scroll = list.scrollTop;
  list.replaceChildren(
    messageNode(parent, ui, { inThread: true }),
    el("div", { class: "divider-label" }, `${replies.length} ${replies.length === 1 ? "reply" : "replies"}`),
    ...items.map((m) => messageNode(m, ui, { inThread: true })),
  );
  list.scrollTop = atBottom ? list.scrollHeight : scroll;
}

// ------------------------------------------------------------------ composing

function updateHint(guide) {
  const text = $("composer-input").value;
  if (guide) ui.hint = guide;
  else if (ui.tip !== text) ui.hint = null; // the guided command was edited or sent
  $("composer-hint").textContent =
    ui.hint ||
    (text.startsWith("/")
      ? "Enter runs the slash command as " + (ui.state?.me.real_name || ui.user)
      : "Enter sends · Shift+Enter adds a line");
}

async function send(input, threadTs) {
  const text = input.value.trim();
  const channel = ui.thread && threadTs ? ui.ctx.channels.get(ui.thread.channel) : currentChannel();
  if (!text || !channel) return;
  input.value = "";
  updateHint();
  if (text.startsWith("/") && !threadTs) await ui.act("command", { channel: channel.id, text });
  else await ui.act("message", { channel: channel.id, text, thread_ts: threadTs || undefined });
}

function wireComposer(form, input, threadTs) {
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    send(input, threadTs());
  });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      send(input, threadTs());
    }
  });
}

// ------------------------------------------------------------------ start

const devpanel = new DevPanel();
const modals = new ModalHost($("modal-root"), ui);

function connect() {
  const live = $("live");
  const events = new EventSource("/sandbox/events");
  events.addEventListener("change", () => scheduleRefresh());
  events.addEventListener("open", () => {
    live.classList.add("on");
    live.title = "Live updates: connected";
  });
  events.addEventListener("error", () => {
    live.classList.remove("on");
    live.title = "Live updates: reconnecting…";
  });
}

function start() {
  loadLocation();
  $("user-switch").addEventListener("change", async (ev) => {
    ui.user = ev.target.value;
    ui.thread = null;
    modals.render(null);
    await refresh();
    if (ui.view.kind === "app" && ui.view.tab === "home") openHome();
  });
  $("thread-close").addEventListener("click", () => {
    ui.thread = null;
    render();
  });
  $("guide-toggle").addEventListener("click", () => toggleGuide(localStorage.getItem("sandbox.guide") === "hidden"));
  $("composer-input").addEventListener("input", () => updateHint());
  wireComposer($("composer"), $("composer-input"), () => null);
  wireComposer($("thread-composer"), $("thread-input"), () => ui.thread && ui.thread.ts);
  document.addEventListener("click", (ev) => {
    // A click outside a toolbar closes its open picker or menu.
    if (!ev.target.closest(".toolbar")) for (const n of document.querySelectorAll(".picker, .menu")) n.hidden = true;
  });
  if (localStorage.getItem("sandbox.dev") === "1") devpanel.toggle(true);
  updateHint();
  connect();
  refresh().then(() => {
    if (ui.view.kind === "app" && ui.view.tab === "home") openHome();
  });
  devpanel.poll();
}

start();
