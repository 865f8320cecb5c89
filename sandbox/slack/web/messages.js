// One message as Slack shows it: avatar, name, time, content (blocks, else text),
// files, reactions, thread summary, and the hover toolbar (react, reply, shortcuts).

import { renderBlocks } from "./blocks.js";
import { el, emojiFor, mrkdwn } from "./mrkdwn.js";

export const QUICK_REACTIONS = ["white_check_mark", "eyes", "+1", "tada", "raised_hand", "x"];
const COLORS = ["#e8912d", "#2bac76", "#1d9bd1", "#e01e5a", "#8e44ad", "#36c5f0", "#4a154b"];

// Slack ts values are "seconds.micros" strings; compare them exactly, not as floats.
export function tsCmp(a, b) {
  const [ai, af = ""] = String(a).split(".");
  const [bi, bf = ""] = String(b).split(".");
  return Number(ai) - Number(bi) || (af.padEnd(6, "0") < bf.padEnd(6, "0") ? -1 : af === bf ? 0 : 1);
}

export function isReply(msg) {
  return Boolean(msg.thread_ts) && msg.thread_ts !== msg.ts;
}

function timeOf(ts) {
  const d = new Date(Number(String(ts).split(".")[0]) * 1000);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function avatar(name, isBot) {
  if (isBot) return el("div", { class: "avatar bot", "aria-hidden": "true" }, "S");
  let hash = 0;
  for (const ch of name) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  const node = el("div", { class: "avatar", "aria-hidden": "true" }, (name[0] || "?").toUpperCase());
  node.style.background = COLORS[hash % COLORS.length];
  return node;
}

function hasVisibleBlocks(msg) {
  return Array.isArray(msg.blocks) && msg.blocks.length > 0;
}

function content(msg, ctx) {
  if (msg.subtype === "tombstone") return el("div", { class: "muted" }, "This message was deleted.");
  if (hasVisibleBlocks(msg)) return renderBlocks(msg.blocks, ctx);
  return el("div", { class: "bk-text" }, mrkdwn(msg.text || "", ctx));
}

function files(msg) {
  if (!msg.files || !msg.files.length) return null;
  return el(
    "div",
    { class: "files" },
    msg.files.map((f) => el("div", { class: "file" }, "📎 ", f.title || f.name, el("span", { class: "muted" }, ` · ${f.size} bytes`))),
  );
}

function reactions(msg, ui) {
  if (!msg.reactions || !msg.reactions.length) return null;
  return el(
    "div",
    { class: "reactions" },
    msg.reactions.map((r) => {
      const mine = r.users.includes(ui.meId);
      const who = r.users.map((id) => ui.ctx.users.get(id)?.name || id).join(", ");
      return el(
        "button",
        {
          type: "button",
          class: `reaction${mine ? " mine" : ""}`,
          title: `${who} reacted with :${r.name}:`,
          onclick: () => !mine && ui.react(msg, r.name),
        },
        emojiFor(r.name),
        el("span", { class: "reaction-count" }, String(r.count)),
      );
    }),
  );
}

function toolbar(msg, ui, inThread) {
  const picker = el(
    "div",
    { class: "picker", hidden: true },
    QUICK_REACTIONS.map((name) =>
      el("button", { type: "button", class: "pick", title: `:${name}:`, onclick: () => ui.react(msg, name) }, emojiFor(name)),
    ),
  );
  const menu = el(
    "div",
    { class: "menu", hidden: true },
    ui.shortcuts.map((s) =>
      el("button", { type: "button", class: "menu-item", onclick: () => ui.shortcut(msg, s.callback_id) }, "⚡ ", s.name),
    ),
  );
  const toggle = (node) => () => {
    const wasHidden = node.hidden;
    picker.hidden = true;
    menu.hidden = true;
    node.hidden = !wasHidden;
  };
  return el(
    "div",
    { class: "toolbar" },
    el("button", { type: "button", class: "tool", title: "Add reaction", "aria-label": "Add reaction", onclick: toggle(picker) }, "☺"),
    inThread ? null : el("button", { type: "button", class: "tool", title: "Reply in thread", "aria-label": "Reply in thread", onclick: () => ui.openThread(msg) }, "💬"),
    el("button", { type: "button", class: "tool", title: "More actions", "aria-label": "More actions", onclick: toggle(menu) }, "⋯"),
    picker,
    menu,
  );
}

// msg: a message dict (Web API shape) or an ephemeral (has .source).
export function messageNode(msg, ui, { inThread = false, replies = [] } = {}) {
  const ephemeral = msg.source !== undefined;
  const users = ui.ctx.users;
  const author = ephemeral
    ? msg.source === "slackbot"
      ? { name: "Slackbot", real_name: "Slackbot", is_bot: true }
      : { name: ui.botName, real_name: ui.botName, is_bot: true }
    : users.get(msg.user) || { name: msg.user, real_name: msg.user, is_bot: Boolean(msg.bot_id) };
  const ctx = ui.blockCtx(
    ephemeral
      ? { kind: "ephemeral", ts: msg.ts }
      : { kind: "message", channel: msg.channel, ts: msg.ts },
  );
  const isBot = author.is_bot || Boolean(msg.bot_id);
  const summary =
    !inThread && replies.length
      ? el(
          "button",
          { type: "button", class: "thread-summary", onclick: () => ui.openThread(msg) },
          el("span", { class: "reply-count" }, `${replies.length} ${replies.length === 1 ? "reply" : "replies"}`),
          el("span", { class: "muted" }, ` · last reply ${timeOf(replies[replies.length - 1].ts)}`),
        )
      : null;
  return el(
    "div",
    {
      class: `msg${ephemeral ? " ephemeral" : ""}${ui.highlight === msg.ts ? " highlight" : ""}`,
      dataset: { ts: msg.ts, kind: ephemeral ? "ephemeral" : "message" },
    },
    avatar(author.real_name || author.name, isBot),
    el(
      "div",
      { class: "msg-body" },
      el(
        "div",
        { class: "msg-meta" },
        el("span", { class: "msg-author" }, author.real_name || author.name),
        isBot ? el("span", { class: "badge" }, "APP") : null,
        el("span", { class: "msg-time" }, timeOf(msg.ts)),
        msg.edited ? el("span", { class: "muted" }, "(edited)") : null,
      ),
      ephemeral
        ? el(
            "div",
            { class: "only-you" },
            "👁 Only visible to you",
            el("button", { type: "button", class: "link-btn", onclick: () => ui.dismiss(msg) }, "Dismiss"),
          )
        : null,
      el("div", { class: "msg-content" }, content(msg, ctx)),
      files(msg),
      reactions(msg, ui),
      summary,
    ),
    ephemeral ? null : toolbar(msg, ui, inThread),
  );
}
