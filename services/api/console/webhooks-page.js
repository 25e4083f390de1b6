// The admin's webhooks page (#/webhooks): the org's subscriptions, a form to
// add one (its secret shown once), and per subscription: send a test, disable
// or enable, rotate the secret, delete (two clicks) and the delivery log.

import { api } from "./api.js";
import { EVENT_TYPES } from "./enums.js";
import { deliveryLog } from "./webhook-deliveries.js";
import { secretPanel, webhookForm } from "./webhook-form.js";
import { absoluteTime, errorMessage, fill, h, toast } from "./ui.js";

/** A button that asks "Confirm …" on the first click and runs ``action`` on the second within 5 s. */
export function twoClick(label, confirmLabel, action) {
  let armed = false;
  const button = h("button", { type: "button", class: "btn btn-ghost btn-small" }, label);
  button.addEventListener("click", () => {
    if (armed) {
      armed = false;
      button.textContent = label;
      action();
      return;
    }
    armed = true;
    button.textContent = confirmLabel;
    setTimeout(() => {
      armed = false;
      button.textContent = label;
    }, 5000);
  });
  return button;
}

function stateLine(webhook) {
  // The circuit breaker: paused after failing every try for a while (GET /webhooks/{id}).
  if (webhook.enabled && webhook.circuit === "open") {
    return [h("span", { class: "badge webhook-off" }, "Paused"),
      h("span", { class: "muted small" }, ` after ${webhook.consecutive_failures} failed tries; next try after `,
        h("time", { datetime: webhook.paused_until }, absoluteTime(webhook.paused_until)))];
  }
  if (webhook.enabled) return h("span", { class: "badge webhook-on" }, "Enabled");
  return [h("span", { class: "badge webhook-off" }, "Disabled"),
    webhook.disabled_reason ? h("span", { class: "muted small" }, ` ${webhook.disabled_reason}`) : null];
}

/** One subscription's card; ``actions`` run the API calls and re-render. */
function webhookCard(webhook, actions) {
  const error = h("p", { class: "field-error", hidden: true, id: `webhook-${webhook.id}-error`, role: "alert" });
  const logSlot = h("div");
  let log = null;
  const run = (fn) => async () => {
    error.hidden = true;
    try {
      await fn();
    } catch (e) {
      if (e.status === 401) return;
      error.textContent = errorMessage(e);
      error.hidden = false;
    }
  };
  const toggleLog = h("button", { type: "button", class: "btn btn-ghost btn-small", "aria-expanded": "false" }, "Deliveries");
  toggleLog.addEventListener("click", () => {
    if (log) {
      log.dispose();
      log = null;
      fill(logSlot);
    } else {
      log = deliveryLog(webhook);
      fill(logSlot, log.el);
    }
    toggleLog.setAttribute("aria-expanded", String(Boolean(log)));
  });
  const showLog = () => {
    if (!log) toggleLog.click();
    else log.reload();
  };
  const buttons = [
    h("button", { type: "button", class: "btn btn-secondary btn-small", onclick: run(async () => {
      await api.testWebhook(webhook.id);
      toast("Test delivery queued.");
      showLog();
    }) }, "Send test"),
    h("button", { type: "button", class: "btn btn-ghost btn-small", onclick: run(() => actions.setEnabled(webhook, !webhook.enabled)) },
      webhook.enabled ? "Disable" : "Enable"),
    twoClick("Rotate secret", "Confirm rotate", run(() => actions.rotate(webhook))),
    twoClick("Delete", "Confirm delete", run(() => actions.remove(webhook))),
    toggleLog,
  ];
  const el = h("li", { class: "card webhook-card", dataset: { id: webhook.id } },
    h("div", { class: "card-body" },
      h("span", { class: "card-top" },
        h("span", { class: "card-title webhook-url" }, webhook.url),
        h("span", { class: "card-time" }, stateLine(webhook))),
      h("p", { class: "card-meta" }, h("span", { class: "badge" }, webhook.format), " ",
        webhook.events.map((e) => [h("code", {}, e), " "])),
      webhook.description ? h("p", { class: "state-line" }, webhook.description) : null,
      h("div", { class: "button-row" }, buttons),
      error,
      logSlot));
  el.dispose = () => log?.dispose();
  return el;
}

export function mountWebhooks(main, ctx) {
  let mounted = true;
  let webhooks = [];
  const status = h("p", { class: "muted" }, "Loading…");
  const editor = h("div", { class: "webhook-editor" });
  const list = h("ol", { class: "cards", id: "webhook-list", "aria-label": "Webhooks" });
  const empty = h("p", { class: "muted", hidden: true }, "No webhooks yet. Add one to push escalations to Slack or your own service.");
  const add = h("button", { type: "button", class: "btn btn-secondary btn-small", onclick: () => openForm() }, "Add webhook");

  function showSecret(webhook) {
    const panel = secretPanel(webhook, { onDone: () => { fill(editor); add.focus(); } });
    fill(editor, panel.el);
    panel.focus();
  }

  function openForm() {
    const form = webhookForm(EVENT_TYPES, {
      onCreated: async (created) => {
        showSecret(created);
        await load();
      },
      onCancel: () => { fill(editor); add.focus(); },
    });
    fill(editor, form.el);
    form.focus();
  }

  const actions = {
    async setEnabled(webhook, enabled) {
      await api.patchWebhook(webhook.id, { enabled });
      toast(enabled ? "Webhook enabled." : "Webhook disabled.");
      await load();
    },
    async rotate(webhook) {
      showSecret(await api.rotateWebhookSecret(webhook.id));
    },
    async remove(webhook) {
      await api.deleteWebhook(webhook.id);
      toast("Webhook deleted.");
      await load();
      add.focus();
    },
  };

  function render() {
    for (const card of list.children) card.dispose();
    fill(list, webhooks.map((w) => webhookCard(w, actions)));
    empty.hidden = webhooks.length > 0;
  }

  async function load() {
    try {
      webhooks = (await api.webhooks()).items;
      status.hidden = true;
      if (mounted) render();
    } catch (error) {
      if (error.status === 401) return;
      status.hidden = false;
      status.className = "notice notice-error";
      status.textContent = error.status === 403 ? "Webhooks are for admins." : errorMessage(error);
    }
  }

  fill(main,
    h("div", { class: "page-head" },
      h("div", {}, h("h1", { tabindex: "-1" }, "Webhooks"),
        h("p", { class: "subtitle" }, "Every escalation event, pushed to Slack or your own service, signed."))),
    status,
    h("section", { class: "section", "aria-labelledby": "webhooks-h" },
      h("div", { class: "section-head" }, h("h2", { id: "webhooks-h" }, "Subscriptions"), add),
      editor, list, empty));
  load();
  return {
    title: "Webhooks",
    unmount() {
      mounted = false;
      for (const card of list.children) card.dispose();
    },
  };
}
