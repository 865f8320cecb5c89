// Slack's mrkdwn subset as DOM nodes. Text only ever becomes text nodes (never HTML),
// so whatever a message contains, the page shows it; it cannot inject markup.

export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// The shortcodes the bot's templates and people use most; others stay as :name:.
const EMOJI = {
  white_check_mark: "✅", heavy_check_mark: "✔️", x: "❌", warning: "⚠️",
  hourglass: "⌛", hourglass_flowing_sand: "⏳", tada: "🎉", eyes: "👀", wave: "👋",
  "+1": "👍", thumbsup: "👍", "-1": "👎", thumbsdown: "👎", heart: "❤️", fire: "🔥",
  rotating_light: "🚨", bell: "🔔", inbox_tray: "📥", outbox_tray: "📤", memo: "📝",
  lock: "🔒", key: "🔑", no_entry: "⛔", no_entry_sign: "🚫", question: "❓",
  exclamation: "❗", information_source: "ℹ️", bulb: "💡", robot_face: "🤖",
  money_with_wings: "💸", moneybag: "💰", receipt: "🧾", ticket: "🎫", computer: "💻",
  wrench: "🔧", hammer_and_wrench: "🛠️", mag: "🔍", clipboard: "📋", calendar: "📅",
  clock3: "🕒", alarm_clock: "⏰", stopwatch: "⏱️", chart_with_upwards_trend: "📈",
  bar_chart: "📊", arrow_right: "➡️", arrows_counterclockwise: "🔄", repeat: "🔁",
  speech_balloon: "💬", pushpin: "📌", link: "🔗", envelope: "✉️", email: "📧",
  raising_hand: "🙋", point_right: "👉", sparkles: "✨", rocket: "🚀", zap: "⚡",
  large_green_circle: "🟢", large_yellow_circle: "🟡", red_circle: "🔴",
  white_circle: "⚪", black_circle: "⚫", large_blue_circle: "🔵", octagonal_sign: "🛑",
  hand: "✋", raised_hand: "✋", ok_hand: "👌", pray: "🙏", clap: "👏", smile: "😄",
  slightly_smiling_face: "🙂", thinking_face: "🤔", package: "📦", scroll: "📜",
  shield: "🛡️", busts_in_silhouette: "👥", bust_in_silhouette: "👤", building_construction: "🏗️",
};

export function emojify(text) {
  return text.replace(/:([a-z0-9_+\-']+):/g, (whole, name) => EMOJI[name] || whole);
}

export function emojiFor(name) {
  return EMOJI[name] || `:${name}:`;
}

// Slack escapes only these three in message text.
function unescape(text) {
  return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

export function safeUrl(url) {
  return /^(https?:|mailto:)/i.test(url) ? url : null;
}

// <...> tokens: links, mentions, special mentions. Returns a node, or null to keep it as text.
function angle(inner, ctx) {
  const [target, label] = splitOnce(inner, "|");
  if (target.startsWith("@")) {
    const user = ctx.users.get(target.slice(1));
    return el("span", { class: "mention" }, "@" + (user ? user.name : label || target.slice(1)));
  }
  if (target.startsWith("#")) {
    const ch = ctx.channels.get(target.slice(1));
    return el("span", { class: "mention channel" }, "#" + (ch ? ch.name : label || target.slice(1)));
  }
  if (target.startsWith("!subteam^")) {
    const group = ctx.groups.get(target.slice(9));
    return el("span", { class: "mention" }, group ? "@" + group.handle : label || "@group");
  }
  if (target.startsWith("!")) {
    const word = target.slice(1).split("^")[0];
    return el("span", { class: "mention special" }, "@" + (label || word).replace(/^@/, ""));
  }
  const href = safeUrl(unescape(target));
  if (href) {
    return el("a", { href, target: "_blank", rel: "noopener noreferrer" }, unescape(label || target));
  }
  return null;
}

function splitOnce(text, sep) {
  const at = text.indexOf(sep);
  return at < 0 ? [text, ""] : [text.slice(0, at), text.slice(at + 1)];
}

// Private-use characters stand in for <...> tokens while formatting is matched, so
// *bold <@U1>* works and no formatting regex ever sees a URL.
const SLOT_OPEN = "\uE000";
const SLOT_CLOSE = "\uE001";
const INLINE =
  /```([\s\S]+?)```|`([^`\n]+)`|(^|[^\w*])\*(?!\s)([^*\n]+?)\*(?![\w*])|(^|[^\w_])_(?!\s)([^_\n]+?)_(?![\w_])|(^|[^\w~])~(?!\s)([^~\n]+?)~(?![\w~])/;

export function mrkdwn(text, ctx) {
  const slots = [];
  const marked = String(text ?? "").replace(/<([^<>\n]+)>/g, (whole, inner) => {
    const node = angle(inner, ctx);
    if (!node) return whole;
    slots.push(node);
    return SLOT_OPEN + (slots.length - 1) + SLOT_CLOSE;
  });
  const frag = document.createDocumentFragment();
  for (const line of splitQuotes(marked)) {
    const target = line.quote ? el("blockquote") : frag;
    inline(line.text, target, slots);
    if (line.quote) frag.append(target);
  }
  return frag;
}

function splitQuotes(text) {
  // "&gt; " starts a quoted line; runs of them become one blockquote.
  const out = [];
  for (const raw of text.split("\n")) {
    const quote = raw.startsWith("&gt; ") || raw === "&gt;";
    const body = quote ? raw.replace(/^&gt; ?/, "") : raw;
    const last = out[out.length - 1];
    if (last && last.quote === quote) last.text += "\n" + body;
    else out.push({ quote, text: body });
  }
  return out;
}

function inline(text, target, slots) {
  let rest = text;
  while (rest) {
    const m = INLINE.exec(rest);
    if (!m) {
      plain(rest, target, slots);
      return;
    }
    plain(rest.slice(0, m.index), target, slots);
    if (m[1] !== undefined) {
      target.append(el("pre", { class: "code-block" }, restoreText(m[1], slots)));
    } else if (m[2] !== undefined) {
      target.append(el("code", {}, restoreText(m[2], slots)));
    } else {
      const [lead, body, tag] =
        m[4] !== undefined ? [m[3], m[4], "b"] : m[6] !== undefined ? [m[5], m[6], "i"] : [m[7], m[8], "s"];
      plain(lead, target, slots);
      const node = el(tag);
      inline(body, node, slots);
      target.append(node);
    }
    rest = rest.slice(m.index + m[0].length);
  }
}

function plain(text, target, slots) {
  const parts = text.split(new RegExp(`${SLOT_OPEN}(\\d+)${SLOT_CLOSE}`));
  parts.forEach((part, i) => {
    if (i % 2 === 1) {
      target.append(slots[Number(part)].cloneNode(true));
      return;
    }
    const lines = emojify(unescape(part)).split("\n");
    lines.forEach((line, j) => {
      if (j > 0) target.append(el("br"));
      if (line) target.append(document.createTextNode(line));
    });
  });
}

// Inside code, tokens go back to their source text: Slack shows code verbatim.
function restoreText(text, slots) {
  return unescape(
    text.replace(new RegExp(`${SLOT_OPEN}(\\d+)${SLOT_CLOSE}`, "g"), (_, i) => slots[Number(i)].textContent),
  );
}

export function plainText(obj) {
  if (!obj) return "";
  const text = String(obj.text ?? "");
  return obj.emoji === false ? text : emojify(text);
}

// A Slack text object: mrkdwn or plain_text.
export function textObject(obj, ctx) {
  if (!obj) return document.createDocumentFragment();
  if (obj.type === "mrkdwn") return mrkdwn(obj.text, ctx);
  return document.createTextNode(plainText(obj));
}
