// The Slack link page (#/slack/link?code=…): the bot sends a Slack user who is
// not linked yet here; signed in, they confirm, and their clicks in Slack act
// as them from then on. The code is single-use and lives 15 minutes.

import { api } from "./api.js";
import { errorMessage, fill, h } from "./ui.js";

export function mountSlackLink(main, ctx, params) {
  const code = params.get("code") || "";
  const status = h("p", { class: "muted", role: "status", id: "slack-link-status" });
  const confirm = h("button", { type: "button", class: "btn btn-primary" }, `Link my Slack account to ${ctx.claims.name}`);

  confirm.addEventListener("click", async () => {
    confirm.disabled = true;
    status.className = "muted";
    status.textContent = "Linking…";
    try {
      await api.linkSlack(code);
      status.className = "notice notice-success";
      status.textContent = "Linked. Your clicks in Slack now act as you; you can close this tab.";
      confirm.hidden = true;
    } catch (error) {
      if (error.status === 401) return;
      confirm.disabled = false;
      status.className = "notice notice-error";
      status.textContent = error.code === "link_code_invalid"
        ? "This link is used or expired. Click Claim in Slack again for a new one."
        : errorMessage(error);
    }
  });

  fill(main,
    h("div", { class: "page-head" },
      h("div", {}, h("h1", { tabindex: "-1" }, "Link your Slack account"),
        h("p", { class: "subtitle" }, "Claim escalations from Slack as yourself."))),
    h("section", { class: "section" },
      code ? confirm : h("p", { class: "notice notice-error" }, "This page needs the link the Slack bot sent you."),
      status));
  return { title: "Link Slack", unmount() {} };
}
