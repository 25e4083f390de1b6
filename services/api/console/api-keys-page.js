// The admin's API keys page (#/api-keys): the org's keys for machine clients
// (the assistant's backend escalating sessions), a form to create one (the key
// shown once, like a webhook's secret), and revoke (two clicks).

import { api } from "./api.js";
import { ApiKeyRole } from "./enums.js";
import { FormFields, formSummary, select } from "./forms.js";
import { errorMessage, fill, h, timeEl, toast } from "./ui.js";
import { twoClick } from "./webhooks-page.js";

const ROLE_LABELS = {
  [ApiKeyRole.engineer]: "Engineer: create and follow escalations",
  [ApiKeyRole.senior]: "Senior: also claim and resolve",
};
const ROLES = Object.values(ApiKeyRole).map((role) => [role, ROLE_LABELS[role] || role]);

/** ``onCreated(key)`` gets the answer, ``key`` included. Returns ``{el, focus}``. */
function keyForm({ onCreated, onCancel }) {
  const fields = new FormFields(formSummary(), "api-key");
  const name = h("input", { type: "text", maxlength: 64, autocomplete: "off", placeholder: "Assistant backend" });
  const role = select(ROLES, ApiKeyRole.engineer);
  const expires = h("input", { type: "date" });
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Create key");
  const form = h("form", { class: "form panel api-key-form", novalidate: true, "aria-label": "New API key" },
    h("h3", { class: "form-title" }, "New API key"),
    fields.summary,
    fields.field("name", "Name", name, { hint: "Who uses it: the handoffs it creates show this name." }),
    fields.field("role", "Role", role),
    fields.field("expires_at", "Expires", expires, { hint: "Optional: the key stops working at the start of this day (UTC)." }),
    h("div", { class: "button-row" }, submit, h("button", { type: "button", class: "btn btn-ghost", onclick: onCancel }, "Cancel")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fields.clear();
    const body = { name: name.value.trim(), role: role.value };
    if (expires.value) body.expires_at = `${expires.value}T00:00:00Z`;
    submit.disabled = true;
    try {
      const created = await api.createApiKey(body);
      toast("API key created.");
      onCreated(created);
    } catch (error) {
      if (error.status === 401) return;
      fields.report(error);
    } finally {
      submit.disabled = false;
    }
  });
  return { el: form, focus: () => name.focus() };
}

/** The key, once: a copy button and ``onDone()`` for "I have stored it". */
function keyPanel(created, { onDone }) {
  const value = h("code", { class: "secret-value", id: "api-key-secret" }, created.key);
  const status = h("span", { class: "muted small", role: "status" });
  const copy = h("button", { type: "button", class: "btn btn-secondary btn-small" }, "Copy");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(created.key);
      status.textContent = "Copied.";
    } catch {
      getSelection().selectAllChildren(value);
      status.textContent = "Copying is not allowed here: the key is selected, copy it with the keyboard.";
    }
  });
  const done = h("button", { type: "button", class: "btn btn-primary btn-small", onclick: onDone }, "I have stored it");
  const el = h("section", { class: "notice secret-panel", role: "alert", "aria-labelledby": "api-key-h", tabindex: "-1" },
    h("h3", { id: "api-key-h", class: "form-title" }, "API key"),
    h("p", {}, "Store this key with its client now: ", h("strong", {}, "you will not see it again."),
      " Send it as ", h("code", {}, "Authorization: Bearer …"), "."),
    h("p", { class: "secret-row" }, value, " ", copy, " ", status),
    h("div", { class: "button-row" }, done));
  return { el, focus: () => el.focus() };
}

function keyCard(key, revoke) {
  const error = h("p", { class: "field-error", hidden: true, role: "alert" });
  const onRevoke = async () => {
    error.hidden = true;
    try {
      await revoke(key);
    } catch (e) {
      if (e.status === 401) return;
      error.textContent = errorMessage(e);
      error.hidden = false;
    }
  };
  return h("li", { class: "card api-key-card", dataset: { id: key.id } },
    h("div", { class: "card-body" },
      h("span", { class: "card-top" },
        h("span", { class: "card-title" }, key.name),
        h("span", { class: "card-time" }, h("span", { class: "badge" }, key.role))),
      h("p", { class: "card-meta" }, h("code", {}, `${key.prefix}…`), " · created ", timeEl(key.created_at),
        " · ", key.last_used_at ? ["last used ", timeEl(key.last_used_at)] : "never used",
        key.expires_at ? [" · expires ", timeEl(key.expires_at)] : null),
      h("div", { class: "button-row" }, twoClick("Revoke", "Confirm revoke", onRevoke)),
      error));
}

export function mountApiKeys(main) {
  let mounted = true;
  const status = h("p", { class: "muted" }, "Loading…");
  const editor = h("div", { class: "api-key-editor" });
  const list = h("ol", { class: "cards", id: "api-key-list", "aria-label": "API keys" });
  const empty = h("p", { class: "muted", hidden: true }, "No API keys yet. Create one for a service that escalates sessions.");
  const add = h("button", { type: "button", class: "btn btn-secondary btn-small", onclick: () => openForm() }, "Create key");
  const closeEditor = () => { fill(editor); add.focus(); };

  function openForm() {
    const form = keyForm({
      onCreated: async (created) => {
        const panel = keyPanel(created, { onDone: closeEditor });
        fill(editor, panel.el);
        panel.focus();
        await load();
      },
      onCancel: closeEditor,
    });
    fill(editor, form.el);
    form.focus();
  }

  async function revoke(key) {
    await api.revokeApiKey(key.id);
    toast(`API key “${key.name}” revoked.`);
    await load();
    add.focus();
  }

  async function load() {
    try {
      const keys = (await api.apiKeys()).items;
      status.hidden = true;
      if (!mounted) return;
      fill(list, keys.map((key) => keyCard(key, revoke)));
      empty.hidden = keys.length > 0;
    } catch (error) {
      if (error.status === 401) return;
      status.hidden = false;
      status.className = "notice notice-error";
      status.textContent = error.status === 403 ? "API keys are for admins." : errorMessage(error);
    }
  }

  fill(main,
    h("div", { class: "page-head" },
      h("div", {}, h("h1", { tabindex: "-1" }, "API keys"),
        h("p", { class: "subtitle" }, "Keys for services that escalate sessions: each acts as an engineer or a senior, never an admin."))),
    status,
    h("section", { class: "section", "aria-labelledby": "api-keys-h" },
      h("div", { class: "section-head" }, h("h2", { id: "api-keys-h" }, "Keys"), add),
      editor, list, empty));
  load();
  return { title: "API keys", unmount() { mounted = false; } };
}
