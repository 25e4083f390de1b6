// The handoff page's status panel for anyone not holding the claim: waiting
// (with Claim for seniors, Cancel for the creator or an admin), who is on it,
// the resolution, or the cancellation.

import { api } from "./api.js";
import { errorMessage, h, timeAgo, timeEl, toast } from "./ui.js";

export function claimLostMessage(body) {
  return `Already claimed by ${body.claimed_by_name} ${timeAgo(body.claimed_at)}.`;
}

/** A two-step "Cancel escalation" button (the second click within 5 s confirms). */
function cancelButton(page) {
  let armed = false;
  let timer = null;
  const button = h("button", { type: "button", class: "btn btn-ghost" }, "Cancel escalation");
  button.addEventListener("click", async () => {
    if (!armed) {
      armed = true;
      button.textContent = "Confirm: cancel escalation";
      timer = setTimeout(() => {
        armed = false;
        button.textContent = "Cancel escalation";
      }, 5000);
      return;
    }
    clearTimeout(timer);
    button.disabled = true;
    try {
      page.update(await api.cancel(page.handoff.id));
      toast("Escalation cancelled.");
    } catch (error) {
      button.disabled = false;
      toast(errorMessage(error), { kind: "error" });
    }
  });
  return button;
}

async function claim(event, page) {
  const button = event.currentTarget;
  button.disabled = true;
  button.textContent = "Claiming…";
  try {
    const claimed = await api.claim(page.handoff.id);
    page.ctx.seen?.add(page.handoff.id);
    page.update(claimed);
    toast("Claimed. It is yours now.");
  } catch (error) {
    if (error.status === 409 && error.code === "handoff_already_claimed") {
      toast(claimLostMessage(error.body), { kind: "warning" });
      page.ctx.navigate("#/queue");
      return;
    }
    if (error.status === 401) return;
    toast(errorMessage(error), { kind: "error" });
    button.disabled = false;
    button.textContent = "Claim";
    page.reload();
  }
}

function waiting(page) {
  const { handoff, claims } = page;
  const buttons = h("div", { class: "button-row" });
  if (page.isSenior) buttons.append(h("button", { type: "button", class: "btn btn-primary", onclick: (e) => claim(e, page) }, "Claim"));
  if (handoff.created_by_id === claims.sub || claims.role === "admin") buttons.append(cancelButton(page));
  return [
    h("p", {}, "Waiting for a senior · escalated ", timeEl(handoff.created_at), "."),
    buttons.childElementCount ? buttons : null,
  ];
}

export function statusPanel(page) {
  const { handoff } = page;
  const panel = h("section", { class: "panel actions-panel", "aria-labelledby": "actions-h" }, h("h2", { id: "actions-h" }, "Status"));
  if (handoff.status === "pending") {
    panel.append(...waiting(page).filter(Boolean));
  } else if (handoff.status === "claimed") {
    panel.append(h("p", {}, h("strong", {}, handoff.claimed_by_name), " is working on this — claimed ", timeEl(handoff.claimed_at), "."));
  } else if (handoff.status === "resolved") {
    panel.append(
      h("p", {}, "Resolved by ", h("strong", {}, handoff.claimed_by_name || "a senior"), " ", timeEl(handoff.resolved_at), "."),
      h("h3", {}, "Resolution notes"),
      h("p", { class: "prose resolution" }, handoff.resolution_notes || ""),
    );
  } else {
    panel.append(h("p", {}, "This escalation was cancelled ", timeEl(handoff.updated_at), "."));
  }
  return panel;
}
