// The sign-in screen: "Sign in with {provider}" when the server offers it (the
// API signs in at the identity provider for us: /auth/login, see
// services/api/routes/signin.py), one click as a demo user when offered, and
// the token form (behind "Use a token" when the provider is offered). What is
// offered comes from the server (config.js).

import { api, readClaims } from "./api.js";
import { loadConfig } from "./config.js";
import { errorMessage, fill, h, svg } from "./ui.js";

export const APP_NAME = "Escalation Mode";

/** What each demo role is for; the user's id and name come from the server. */
const DEMO_WHAT = {
  engineer: "Junior engineer: escalate and follow",
  senior: "Senior: the live queue, claim, resolve",
  admin: "Admin: queue, routing and analytics",
};

export function logo() {
  return svg("svg", { class: "logo", viewBox: "0 0 32 32", width: 28, height: 28, "aria-hidden": "true" },
    svg("rect", { width: 32, height: 32, rx: 7, class: "logo-bg" }),
    svg("path", { d: "M9 21l7-10 7 10", class: "logo-mark" }));
}

function tokenForm(onToken, fail) {
  const textarea = h("textarea", {
    id: "token", rows: 4, spellcheck: "false", autocomplete: "off", "aria-describedby": "token-hint",
    placeholder: "eyJhbGciOiJIUzI1NiIs…",
  });
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-block" }, "Sign in");
  const form = h("form", { class: "signin-form", novalidate: true },
    h("label", { for: "token", class: "label" }, "Access token"),
    h("p", { class: "hint", id: "token-hint" }, "Paste a bearer token (JWT), e.g. from ", h("code", {}, "escalations token"), "."),
    textarea,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = textarea.value.trim();
    if (!readClaims(token)) {
      fail("That does not look like a token: expected three base64url parts with sub, role and org claims.");
      textarea.focus();
      return;
    }
    submit.disabled = true;
    try {
      await onToken(token);
    } catch (e) {
      submit.disabled = false;
      fail(e.status === 401 ? `The server refused this token: ${e.detail || "invalid token"}` : errorMessage(e));
    }
  });
  return form;
}

function demoButton(user, onToken, fail) {
  return h("button", {
    type: "button", class: "demo-btn", dataset: { role: user.role },
    onclick: async (event) => {
      const button = event.currentTarget;
      button.disabled = true;
      try {
        const { token } = await api.demoSignIn(user.role);
        await onToken(token);
      } catch (e) {
        button.disabled = false;
        fail(errorMessage(e));
      }
    },
  }, h("span", { class: "demo-name" }, `Sign in as ${user.name}`), h("span", { class: "demo-what" }, DEMO_WHAT[user.role] || user.role));
}

async function offerSso(slot, tokens) {
  let config;
  try {
    config = await loadConfig();
  } catch {
    return;
  }
  if (!config.sso || !config.sso.enabled) return;
  fill(slot, ssoSection(config.sso));
  slot.hidden = false;
  const form = tokens.firstChild;
  fill(tokens, h("details", { class: "use-token" }, h("summary", {}, "Use a token"), form));
}

async function offerDemo(demo, onToken, fail) {
  let config;
  try {
    config = await loadConfig();
  } catch {
    return; // the token form still works
  }
  if (!config.demo.enabled || !config.demo.users.length) return;
  demo.append(
    h("h2", { id: "demo-h" }, "Try the demo"),
    h("div", { class: "demo-buttons" }, config.demo.users.map((user) => demoButton(user, onToken, fail))),
    h("p", { class: "divider" }, h("span", {}, "or use a token")),
  );
  demo.hidden = false;
}

/** The words for a sign-in that came back from the provider with ``code``. */
export function signInProblem(code) {
  if (code === "no_role") {
    return "You are signed in at your identity provider, but none of your groups gives you a role here. Ask an admin to map one of your groups to a role.";
  }
  if (code === "identity_provider_unavailable") return "Your identity provider is not answering. Try again in a moment.";
  return "The sign-in did not complete. Try again.";
}

function ssoSection(sso) {
  return h("section", { class: "sso" },
    h("a", { class: "btn btn-primary btn-block", id: "sso-sign-in", href: "auth/login" }, `Sign in with ${sso.display_name}`),
    h("p", { class: "divider" }, h("span", {}, "or")));
}

/** Show the sign-in card in ``main``; ``onToken(token)`` signs in (it throws to refuse). */
export async function showSignIn(main, { message, onToken }) {
  const error = h("p", { class: "notice notice-error", role: "alert", hidden: !message }, message || "");
  const fail = (text) => {
    error.textContent = text;
    error.hidden = false;
  };
  const demo = h("section", { class: "demo", hidden: true, "aria-labelledby": "demo-h" });
  const sso = h("div", { hidden: true });
  const tokens = h("div", {}, tokenForm(onToken, fail));
  const card = h("div", { class: "signin-card" },
    h("div", { class: "signin-brand" }, logo(), h("span", {}, APP_NAME)),
    h("h1", { tabindex: "-1" }, "Sign in to the console"),
    h("p", { class: "muted" }, "Escalate stuck sessions, and pick them up live."),
    error,
    sso,
    demo,
    tokens,
  );
  fill(main, h("div", { class: "signin" }, card));
  await offerSso(sso, tokens);
  await offerDemo(demo, onToken, fail);
}
