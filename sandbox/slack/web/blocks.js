// Block Kit as the page shows it: header, section (text, fields, accessory), context,
// divider, actions, image, input (modals), rich_text (what people type). Interactive
// elements call ctx.act({action_id, block_id, value}); inputs are read by collectValues.

import { el, emojify, mrkdwn, plainText, safeUrl, textObject } from "./mrkdwn.js";

export function renderBlocks(blocks, ctx) {
  const root = el("div", { class: "blocks" });
  for (const block of blocks || []) {
    const node = renderBlock(block, ctx);
    if (node) root.append(node);
  }
  return root;
}

function renderBlock(block, ctx) {
  switch (block.type) {
    case "header":
      return el("div", { class: "bk-header" }, plainText(block.text));
    case "section":
      return section(block, ctx);
    case "context":
      return el(
        "div",
        { class: "bk-context" },
        (block.elements || []).map((item) =>
          item.type === "image"
            ? image(item.image_url, item.alt_text, "bk-context-img")
            : el("span", { class: "bk-context-item" }, textObject(item, ctx)),
        ),
      );
    case "divider":
      return el("hr", { class: "bk-divider" });
    case "actions":
      return el(
        "div",
        { class: "bk-actions" },
        (block.elements || []).map((item) => element(item, block, ctx)),
      );
    case "image":
      return el(
        "figure",
        { class: "bk-image" },
        block.title ? el("figcaption", {}, plainText(block.title)) : null,
        image(block.image_url, block.alt_text, ""),
      );
    case "input":
      return input(block, ctx);
    case "rich_text":
      return richText(block, ctx);
    default:
      return el("div", { class: "bk-unknown" }, `[${block.type} block]`);
  }
}

function section(block, ctx) {
  const main = el("div", { class: "bk-section-main" });
  if (block.text) main.append(el("div", { class: "bk-text" }, textObject(block.text, ctx)));
  if (block.fields && block.fields.length) {
    main.append(
      el(
        "div",
        { class: "bk-fields" },
        block.fields.map((f) => el("div", { class: "bk-field" }, textObject(f, ctx))),
      ),
    );
  }
  const accessory = block.accessory ? element(block.accessory, block, ctx) : null;
  return el(
    "div",
    { class: "bk-section" },
    main,
    accessory ? el("div", { class: "bk-accessory" }, accessory) : null,
  );
}

function image(url, alt, cls) {
  const src = url && (safeUrl(url) || (/^data:image\//.test(url) ? url : null));
  if (!src) return el("span", { class: "bk-image-missing" }, alt || "image");
  return el("img", { class: cls, src, alt: alt || "", loading: "lazy" });
}

// ------------------------------------------------------------------ interactive elements

function element(item, block, ctx) {
  const send = (value) => ctx.act({ action_id: item.action_id, block_id: block.block_id, value });
  switch (item.type) {
    case "button":
      return el(
        "button",
        {
          class: `bk-btn ${item.style || ""}`.trim(),
          type: "button",
          dataset: { actionId: item.action_id || "" },
          onclick: async (ev) => {
            ev.preventDefault();
            if (item.confirm && !(await ctx.confirm(item.confirm))) return;
            const href = item.url && safeUrl(item.url);
            if (href) window.open(href, "_blank", "noopener");
            send(item.value);
          },
        },
        plainText(item.text),
      );
    case "static_select":
    case "external_select":
    case "users_select":
    case "conversations_select":
    case "channels_select":
      return select(item, ctx, (value) => send(value));
    case "overflow":
      return select(
        { ...item, placeholder: { type: "plain_text", text: "⋯" } },
        ctx,
        (value) => send(value),
        "bk-overflow",
      );
    case "datepicker":
    case "timepicker":
      return el("input", {
        class: "bk-input",
        type: item.type === "datepicker" ? "date" : "time",
        value: item.initial_date || item.initial_time || "",
        onchange: (ev) => send(ev.target.value),
      });
    case "image":
      return image(item.image_url, item.alt_text, "bk-accessory-img");
    default:
      return el("span", { class: "bk-unknown" }, `[${item.type}]`);
  }
}

function options(item, ctx) {
  if (item.type === "users_select") {
    return [...ctx.users.values()]
      .filter((u) => !u.is_bot)
      .map((u) => ({ value: u.id, text: { type: "plain_text", text: u.real_name } }));
  }
  if (item.type === "conversations_select" || item.type === "channels_select") {
    return [...ctx.channels.values()]
      .filter((c) => c.kind === "channel")
      .map((c) => ({ value: c.id, text: { type: "plain_text", text: "#" + c.name } }));
  }
  const all = [...(item.options || [])];
  for (const group of item.option_groups || []) all.push(...(group.options || []));
  return all;
}

function initialValue(item) {
  return (
    (item.initial_option && item.initial_option.value) ||
    item.initial_user ||
    item.initial_conversation ||
    item.initial_channel ||
    ""
  );
}

function select(item, ctx, onchange, cls = "bk-select") {
  const placeholder = item.placeholder ? plainText(item.placeholder) : "Select an option";
  const node = el(
    "select",
    {
      class: cls,
      dataset: { actionId: item.action_id || "" },
      onchange: onchange ? (ev) => ev.target.value && onchange(ev.target.value) : undefined,
    },
    el("option", { value: "" }, placeholder),
    options(item, ctx).map((opt) => el("option", { value: opt.value }, plainText(opt.text))),
  );
  node.value = initialValue(item);
  return node;
}

// ------------------------------------------------------------------ modal inputs

function input(block, ctx) {
  const item = block.element || {};
  const id = `in-${block.block_id}`;
  let control;
  if (item.type === "plain_text_input") {
    const attrs = {
      id,
      class: "bk-input",
      placeholder: item.placeholder ? plainText(item.placeholder) : "",
      maxlength: item.max_length,
    };
    control = item.multiline ? el("textarea", { ...attrs, rows: 4 }) : el("input", attrs);
    control.value = item.initial_value || "";
  } else if (["static_select", "users_select", "conversations_select", "channels_select", "external_select"].includes(item.type)) {
    control = select(item, ctx, null, "bk-select");
    control.id = id;
  } else if (item.type === "datepicker" || item.type === "timepicker") {
    control = el("input", { id, class: "bk-input", type: item.type === "datepicker" ? "date" : "time" });
    control.value = item.initial_date || item.initial_time || "";
  } else if (item.type === "number_input") {
    control = el("input", { id, class: "bk-input", type: "number", step: item.is_decimal_allowed ? "any" : "1" });
    control.value = item.initial_value || "";
  } else {
    control = el("span", { class: "bk-unknown" }, `[${item.type} input]`);
  }
  const kept = ctx.kept && ctx.kept[block.block_id];
  if (kept !== undefined && "value" in control) control.value = kept;
  const error = ctx.errors && ctx.errors[block.block_id];
  return el(
    "div",
    {
      class: `bk-input-block${error ? " has-error" : ""}`,
      dataset: { blockId: block.block_id, actionId: item.action_id || "", optional: block.optional ? "1" : "" },
    },
    el(
      "label",
      { for: id, class: "bk-label" },
      plainText(block.label),
      block.optional ? el("span", { class: "bk-optional" }, " (optional)") : null,
    ),
    control,
    block.hint ? el("div", { class: "bk-hint" }, plainText(block.hint)) : null,
    error ? el("div", { class: "bk-error", role: "alert" }, emojify(error)) : null,
  );
}

// {block_id: {action_id: value}} for every input of a rendered modal, and which
// required ones are empty (Slack's client refuses to submit those).
export function collectValues(root) {
  const values = {};
  const missing = [];
  const kept = {};
  for (const node of root.querySelectorAll(".bk-input-block")) {
    const control = node.querySelector("input, textarea, select");
    if (!control) continue;
    const { blockId, actionId, optional } = node.dataset;
    const value = control.value;
    kept[blockId] = value;
    if (!value && !optional) missing.push(blockId);
    if (value !== "") values[blockId] = { [actionId]: value };
  }
  return { values, missing, kept };
}

// ------------------------------------------------------------------ rich_text (what people typed)

function richText(block, ctx) {
  const root = el("div", { class: "bk-rich" });
  for (const part of block.elements || []) {
    if (part.type === "rich_text_preformatted") {
      root.append(el("pre", { class: "code-block" }, richInline(part.elements, ctx)));
    } else if (part.type === "rich_text_quote") {
      root.append(el("blockquote", {}, richInline(part.elements, ctx)));
    } else if (part.type === "rich_text_list") {
      const list = el(part.style === "ordered" ? "ol" : "ul");
      for (const item of part.elements || []) list.append(el("li", {}, richInline(item.elements, ctx)));
      root.append(list);
    } else {
      root.append(el("div", {}, richInline(part.elements, ctx)));
    }
  }
  return root;
}

function richInline(elements, ctx) {
  const frag = document.createDocumentFragment();
  for (const item of elements || []) {
    let node;
    if (item.type === "text") {
      // Slack's composer turns *bold*, `code` and the like into styles; the emulator stores
      // the typed text as is, so format it here, escaped first so < > stay literal text.
      const escaped = item.text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
      node = item.style ? el("span", {}, item.text) : el("span", {}, mrkdwn(escaped, ctx));
    } else if (item.type === "link") {
      const href = safeUrl(item.url || "");
      node = href
        ? el("a", { href, target: "_blank", rel: "noopener noreferrer" }, item.text || item.url)
        : el("span", {}, item.text || item.url || "");
    } else if (item.type === "user" || item.type === "channel" || item.type === "usergroup") {
      const ref = { user: "@", channel: "#", usergroup: "!subteam^" }[item.type];
      node = mrkdwn(`<${ref}${item.user_id || item.channel_id || item.usergroup_id}>`, ctx);
    } else if (item.type === "emoji") {
      node = document.createTextNode(emojify(`:${item.name}:`));
    } else {
      node = document.createTextNode(item.text || "");
    }
    const style = item.style || {};
    if (style.code) node = el("code", {}, node);
    if (style.bold) node = el("b", {}, node);
    if (style.italic) node = el("i", {}, node);
    if (style.strike) node = el("s", {}, node);
    frag.append(node);
  }
  return frag;
}
