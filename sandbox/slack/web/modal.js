// Modals (the user's top view) and Block Kit confirm dialogs.

import { collectValues, renderBlocks } from "./blocks.js";
import { el, mrkdwn, plainText, textObject } from "./mrkdwn.js";

const REQUIRED = "Please complete this required field.";

export class ModalHost {
  constructor(root, ui) {
    this.root = root;
    this.ui = ui;
    this.key = null; // what is on screen: view id + hash + errors
    this.kept = {}; // typed values by view id, so a re-render keeps them
    this.localErrors = {};
  }

  render(modal) {
    if (!modal) {
      this.key = null;
      this.localErrors = {};
      this.root.replaceChildren();
      return;
    }
    const key = `${modal.id}|${modal.hash}|${JSON.stringify(modal.errors)}|${JSON.stringify(this.localErrors)}`;
    if (key === this.key) return;
    const dialog = this.root.querySelector(".modal");
    if (dialog && dialog.dataset.viewId === modal.id) this.kept[modal.id] = collectValues(dialog).kept;
    this.key = key;
    const errors = { ...(modal.errors || {}), ...this.localErrors };
    const ctx = this.ui.blockCtx({ kind: "view", view_id: modal.id });
    ctx.errors = errors;
    ctx.kept = this.kept[modal.id];
    const submit = modal.submit
      ? el("button", { type: "submit", class: "bk-btn primary" }, plainText(modal.submit))
      : null;
    const form = el(
      "form",
      {
        class: "modal",
        role: "dialog",
        "aria-modal": "true",
        "aria-label": plainText(modal.title),
        dataset: { viewId: modal.id },
        onsubmit: (ev) => {
          ev.preventDefault();
          this.submit(modal, form);
        },
      },
      el(
        "div",
        { class: "modal-header" },
        el("span", { class: "modal-title" }, plainText(modal.title)),
        el("button", { type: "button", class: "icon-btn", "aria-label": "Close", onclick: () => this.close(modal) }, "✕"),
      ),
      el("div", { class: "modal-body" }, renderBlocks(modal.blocks, ctx)),
      el(
        "div",
        { class: "modal-footer" },
        el(
          "button",
          { type: "button", class: "bk-btn", onclick: () => this.close(modal) },
          modal.close ? plainText(modal.close) : "Cancel",
        ),
        submit,
      ),
    );
    this.root.replaceChildren(el("div", { class: "overlay" }, form));
    const first = form.querySelector("input, textarea, select");
    if (first && !dialog) first.focus();
  }

  async submit(modal, form) {
    const { values, missing, kept } = collectValues(form);
    this.kept[modal.id] = kept;
    this.localErrors = Object.fromEntries(missing.map((id) => [id, REQUIRED]));
    if (missing.length) {
      this.render(modal);
      return;
    }
    await this.ui.act("submit", { view_id: modal.id, values });
  }

  async close(modal) {
    this.localErrors = {};
    delete this.kept[modal.id];
    await this.ui.act("close", { view_id: modal.id });
  }
}

// A Block Kit confirm object as a dialog; resolves true when confirmed.
export function confirmDialog(confirm, ctx) {
  return new Promise((resolve) => {
    const layer = el("div", { class: "overlay confirm-layer" });
    const done = (answer) => {
      layer.remove();
      resolve(answer);
    };
    const style = confirm.style === "danger" ? "danger" : "primary";
    layer.append(
      el(
        "div",
        { class: "modal confirm", role: "alertdialog", "aria-modal": "true" },
        el("div", { class: "modal-header" }, el("span", { class: "modal-title" }, plainText(confirm.title) || "Are you sure?")),
        el("div", { class: "modal-body" }, confirm.text ? textObject(confirm.text, ctx) : mrkdwn("", ctx)),
        el(
          "div",
          { class: "modal-footer" },
          el("button", { type: "button", class: "bk-btn", onclick: () => done(false) }, plainText(confirm.deny) || "Cancel"),
          el("button", { type: "button", class: `bk-btn ${style}`, onclick: () => done(true) }, plainText(confirm.confirm) || "Yes"),
        ),
      ),
    );
    document.body.append(layer); // above any modal, and untouched by its re-renders
  });
}
