// The admin's "Add a webhook" form (url, format, events, description) and the
// panel that shows a signing secret once, after a create or a rotation. The
// API's errors show next to the field they concern: a 422's fields, and
// webhook_url_forbidden (with its reason), invalid_webhook_url and
// webhook_url_unresolvable on the URL.

import { api } from "./api.js";
import { WebhookFormat } from "./enums.js";
import { FormFields, formSummary, select } from "./forms.js";
import { h, toast } from "./ui.js";

const URL_CODES = new Set(["webhook_url_forbidden", "invalid_webhook_url", "webhook_url_unresolvable"]);
const FORMAT_LABELS = {
  [WebhookFormat.standard]: "Standard Webhooks (signed JSON)",
  [WebhookFormat.slack]: "Slack (incoming webhook message)",
};
const FORMATS = Object.values(WebhookFormat).map((format) => [format, FORMAT_LABELS[format] || format]);
const REASONS = {
  loopback: "it is a loopback address",
  private: "it is a private network address",
  link_local: "it is a link-local address",
  multicast: "it is a multicast address",
  reserved: "it is a reserved address",
  unspecified: "it is an unspecified address",
};

/** The API error's message, with ``reason`` in words when the URL was refused for one. */
export function urlProblem(error) {
  const reason = error.body && error.body.reason;
  if (!reason) return error.detail;
  const words = REASONS[reason] || reason;
  return error.detail && error.detail.includes(reason) ? error.detail : `${error.detail} (${words})`;
}

function eventBoxes(eventTypes) {
  return eventTypes.map((type) => h("label", { class: "check" },
    h("input", { type: "checkbox", value: type, checked: true }), " ", h("code", {}, type)));
}

/** ``onCreated(webhook)`` gets the answer, secret included. Returns ``{el, focus}``. */
export function webhookForm(eventTypes, { onCreated, onCancel }) {
  const fields = new FormFields(formSummary(), "webhook");
  const url = h("input", { type: "url", maxlength: 2048, autocomplete: "off", placeholder: "https://hooks.example.com/escalations" });
  const format = select(FORMATS, WebhookFormat.standard);
  const description = h("input", { type: "text", maxlength: 500, autocomplete: "off" });
  const boxes = eventBoxes(eventTypes);
  const eventsError = h("p", { class: "field-error", id: "webhook-events-error", hidden: true });
  const events = h("fieldset", { class: "fieldset checks", id: "webhook-events", tabindex: "-1" },
    h("legend", { class: "label" }, "Events"), boxes, eventsError);
  fields.add("events", events, eventsError);
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Add webhook");
  const form = h("form", { class: "form panel webhook-form", novalidate: true, "aria-label": "New webhook" },
    h("h3", { class: "form-title" }, "New webhook"),
    fields.summary,
    fields.field("url", "Endpoint URL", url, { hint: "Where each event is POSTed. Public http(s) addresses only." }),
    fields.field("format", "Format", format),
    events,
    fields.field("description", "Description", description, { hint: "Optional: who owns it, what it feeds." }),
    h("div", { class: "button-row" }, submit, h("button", { type: "button", class: "btn btn-ghost", onclick: onCancel }, "Cancel")),
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fields.clear();
    const body = {
      url: url.value.trim(),
      format: format.value,
      events: boxes.map((label) => label.querySelector("input")).filter((box) => box.checked).map((box) => box.value),
      description: description.value.trim(),
    };
    submit.disabled = true;
    try {
      const created = await api.createWebhook(body);
      toast("Webhook added.");
      onCreated(created);
    } catch (error) {
      if (error.status === 401) return;
      if (URL_CODES.has(error.code)) error.detail = urlProblem(error);
      fields.report(error, (e) => (URL_CODES.has(e.code) ? "url" : null));
    } finally {
      submit.disabled = false;
    }
  });

  return { el: form, focus: () => url.focus() };
}

/** The secret, once: a copy button and ``onDone()`` for "I have stored it". */
export function secretPanel(webhook, { onDone }) {
  const value = h("code", { class: "secret-value", id: "webhook-secret" }, webhook.secret);
  const status = h("span", { class: "muted small", role: "status" });
  const copy = h("button", { type: "button", class: "btn btn-secondary btn-small" }, "Copy");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(webhook.secret);
      status.textContent = "Copied.";
    } catch {
      getSelection().selectAllChildren(value);
      status.textContent = "Copying is not allowed here: the secret is selected, copy it with the keyboard.";
    }
  });
  const done = h("button", { type: "button", class: "btn btn-primary btn-small", onclick: onDone }, "I have stored it");
  const el = h("section", { class: "notice secret-panel", role: "alert", "aria-labelledby": "secret-h", tabindex: "-1" },
    h("h3", { id: "secret-h", class: "form-title" }, "Signing secret"),
    h("p", {}, "Store this secret with the receiver now: ", h("strong", {}, "you will not see it again."),
      " It signs every delivery to ", h("code", {}, webhook.url), "."),
    h("p", { class: "secret-row" }, value, " ", copy, " ", status),
    h("div", { class: "button-row" }, done));
  return { el, focus: () => el.focus() };
}
