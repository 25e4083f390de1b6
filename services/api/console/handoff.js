// One handoff: what the junior saw and tried, the AI assessment (filling in
// place when its event arrives), and the senior's claim / release / resolve.

import { api } from "./api.js";
import { isNewer } from "./store.js";
import {
  absoluteTime,
  domainChip,
  errorMessage,
  fill,
  h,
  priorityBadge,
  slaBadge,
  statusBadge,
  timeAgo,
  timeEl,
  toast,
} from "./ui.js";

const ACTIVITY = {
  handoff_created: (e) => `Escalated by ${e.actor_name || "someone"}`,
  handoff_assessment_ready: () => "AI assessment ready",
  handoff_assessment_failed: () => "AI assessment failed",
  handoff_claimed: (e) => `Claimed by ${e.actor_name || "someone"}`,
  handoff_released: (e) => `Released by ${e.actor_name || "someone"}`,
  handoff_resolved: (e) => `Resolved by ${e.actor_name || "someone"}`,
  handoff_cancelled: (e) => `Cancelled by ${e.actor_name || "someone"}`,
  handoff_sla_breached: () => "Waited past the claim SLA",
  handoff_escalated: (e) => escalatedTo(e.data && e.data.escalation),
};

function escalatedTo(escalation) {
  if (!escalation) return "Escalated";
  const who = escalation.target === "all_seniors" ? "all seniors" : "a team";
  const loop = escalation.loop ? `, round ${escalation.loop + 1}` : "";
  return `Escalated to level ${escalation.level} (${who}${loop})`;
}

const chipsKey = (id) => `escalations.chips-hidden.${id}`;
const draftKey = (id) => `escalations.draft.${id}`;

export function claimLostMessage(body) {
  return `Already claimed by ${body.claimed_by_name} ${timeAgo(body.claimed_at)}.`;
}

export function mountHandoff(main, ctx, handoffId) {
  const { claims } = ctx;
  const isSenior = claims.role === "senior" || claims.role === "admin";
  let handoff = null;
  let work = null; // the notes panel while this user holds the claim
  const activity = new Map();

  const back = isSenior
    ? h("a", { class: "back", href: "#/queue" }, "← Queue")
    : h("a", { class: "back", href: "#/mine" }, "← My escalations");
  const head = h("header", { class: "hv-head" });
  const aside = h("div", { class: "hv-aside" });
  const assessment = h("section", { class: "panel assessment", "aria-labelledby": "assess-h", "aria-live": "polite" });
  const context = h("div", { class: "hv-context" });
  const activityList = h("ol", { class: "activity" });
  const activityPanel = h("section", { class: "panel", "aria-labelledby": "activity-h" },
    h("h2", { id: "activity-h" }, "Activity"),
    activityList,
  );
  const body = h("div", { class: "hv-grid", hidden: true },
    h("div", { class: "hv-main" }, assessment, context),
    h("div", { class: "hv-side" }, aside, activityPanel),
  );
  const status = h("p", { class: "muted" }, "Loading…");
  fill(main, back, status, head, body);

  async function load() {
    try {
      const [loaded, history] = await Promise.all([api.getHandoff(handoffId), api.history(handoffId)]);
      for (const event of history.items) activity.set(event.id, event);
      handoff = null;
      update(loaded);
      status.hidden = true;
      body.hidden = false;
      const heading = head.querySelector("h1");
      if (heading && (document.activeElement === document.body || document.activeElement === main)) heading.focus();
    } catch (error) {
      if (error.status === 401) return;
      status.textContent = error.status === 404 ? "This handoff does not exist, or belongs to another organisation." : errorMessage(error);
      status.className = "notice notice-error";
    }
  }

  function update(next) {
    if (!isNewer(next, handoff)) return;
    const firstRender = handoff === null;
    const previous = handoff;
    handoff = next;
    ctx.setTitle(next.snapshot.problem_summary);
    renderHead();
    renderAside(previous);
    if (firstRender || previous.assessment_status !== next.assessment_status || previous.ai_assessment_data !== next.ai_assessment_data) {
      renderAssessment();
    }
    if (firstRender) renderContext();
    renderActivity();
  }

  // --- header ------------------------------------------------------------------

  function renderHead() {
    const s = handoff.snapshot;
    // A live update rebuilds the header; a keyboard user focused on it keeps the focus.
    const hadFocus = head.contains(document.activeElement);
    fill(head, 
      h("div", { class: "badges" }, priorityBadge(handoff.priority), statusBadge(handoff.status), domainChip(s.problem_domain), slaBadge(handoff)),
      h("h1", { tabindex: "-1" }, s.problem_summary),
      h("p", { class: "meta" },
        `Escalated by ${handoff.created_by_name} `, timeEl(handoff.created_at),
        h("span", { class: "sep" }, "·"), "session ", h("code", {}, handoff.session_id),
      ),
      h("dl", { class: "facts" },
        fact("Domain", s.problem_domain),
        fact("Steps in session", String(s.step_count)),
        fact("Assistant confidence", s.confidence_tier),
        fact("Session status", s.status),
      ),
    );
    if (hadFocus) head.querySelector("h1").focus();
  }

  function fact(label, value) {
    return h("div", { class: "fact" }, h("dt", {}, label), h("dd", {}, value));
  }

  // --- actions ---------------------------------------------------------------------

  function renderAside(previous) {
    const mine = handoff.status === "claimed" && handoff.claimed_by_id === claims.sub;
    if (mine) {
      if (!work) {
        work = workPanel();
        fill(aside, work.el);
        if (previous && previous.status === "pending") work.focus();
      }
      work.refresh();
      return;
    }
    work = null;
    fill(aside, actionPanel());
  }

  function actionPanel() {
    const panel = h("section", { class: "panel actions-panel", "aria-labelledby": "actions-h" }, h("h2", { id: "actions-h" }, "Status"));
    if (handoff.status === "pending") {
      panel.append(h("p", {}, "Waiting for a senior · escalated ", timeEl(handoff.created_at), "."));
      const buttons = h("div", { class: "button-row" });
      if (isSenior) buttons.append(h("button", { type: "button", class: "btn btn-primary", onclick: claim }, "Claim"));
      if (handoff.created_by_id === claims.sub || claims.role === "admin") buttons.append(cancelButton());
      if (buttons.childElementCount) panel.append(buttons);
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

  function cancelButton() {
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
        update(await api.cancel(handoff.id));
        toast("Escalation cancelled.");
      } catch (error) {
        button.disabled = false;
        toast(errorMessage(error), { kind: "error" });
      }
    });
    return button;
  }

  async function claim(event) {
    const button = event.currentTarget;
    button.disabled = true;
    button.textContent = "Claiming…";
    try {
      const claimed = await api.claim(handoff.id);
      ctx.seen?.add(handoff.id);
      update(claimed);
      toast("Claimed. It is yours now.");
    } catch (error) {
      if (error.status === 409 && error.code === "handoff_already_claimed") {
        toast(claimLostMessage(error.body), { kind: "warning" });
        ctx.navigate("#/queue");
        return;
      }
      if (error.status === 401) return;
      toast(errorMessage(error), { kind: "error" });
      button.disabled = false;
      button.textContent = "Claim";
      reload();
    }
  }

  // --- the claimed-by-me panel: suggested-step chips, notes, resolve, release ------

  function workPanel() {
    const id = handoff.id;
    const textarea = h("textarea", {
      id: "work-notes", rows: 7, maxlength: 10000, "aria-describedby": "work-notes-hint work-notes-error",
      placeholder: "What did you find, and what fixed it?",
    });
    textarea.value = sessionStorage.getItem(draftKey(id)) || "";
    textarea.addEventListener("input", () => {
      sessionStorage.setItem(draftKey(id), textarea.value);
      errorEl.hidden = true;
    });
    const errorEl = h("p", { class: "field-error", id: "work-notes-error", hidden: true });
    const chips = h("div", { class: "chips", role: "group", "aria-labelledby": "chips-h" });
    const chipsBox = h("div", { class: "chips-box" },
      h("div", { class: "chips-head" },
        h("h3", { id: "chips-h" }, "Suggested steps"),
        h("button", { type: "button", class: "icon-btn", "aria-label": "Hide suggested steps", onclick: hideChips }, "×"),
      ),
      chips,
    );
    const resolveBtn = h("button", { type: "submit", class: "btn btn-primary" }, "Resolve");
    const releaseBtn = h("button", { type: "button", class: "btn btn-ghost", onclick: release }, "Release to queue");
    const form = h("form", { class: "work-form", novalidate: true },
      chipsBox,
      h("label", { for: "work-notes", class: "label" }, "Resolution notes"),
      h("p", { class: "hint", id: "work-notes-hint" }, "Saved as the resolution when you resolve. The junior sees them."),
      textarea,
      errorEl,
      h("div", { class: "button-row" }, resolveBtn, releaseBtn),
    );
    form.addEventListener("submit", resolve);
    const el = h("section", { class: "panel work", "aria-labelledby": "work-h" },
      h("h2", { id: "work-h" }, "You are on it"),
      h("p", { class: "muted small" }, "Claimed ", timeEl(handoff.claimed_at), "."),
      form,
    );

    function hideChips() {
      sessionStorage.setItem(chipsKey(id), "1");
      chipsBox.hidden = true;
      textarea.focus();
    }

    function refresh() {
      const steps = (handoff.ai_assessment_data && handoff.ai_assessment_data.suggested_steps) || [];
      const hidden = sessionStorage.getItem(chipsKey(id)) === "1";
      chipsBox.hidden = hidden || steps.length === 0;
      if (chips.dataset.for === String(steps.length) + handoff.assessment_status) return;
      chips.dataset.for = String(steps.length) + handoff.assessment_status;
      fill(chips, steps.map((step) => h("button", {
        type: "button", class: "chip", title: step,
        onclick: (event) => useStep(event.currentTarget, step),
      }, h("span", { "aria-hidden": "true" }, "+"), h("span", {}, step))));
    }

    function useStep(chip, step) {
      const current = textarea.value.replace(/\s+$/, "");
      textarea.value = current ? `${current}\n${step}` : step;
      sessionStorage.setItem(draftKey(id), textarea.value);
      chip.classList.add("used");
      textarea.focus();
      textarea.setSelectionRange(textarea.value.length, textarea.value.length);
    }

    async function resolve(event) {
      event.preventDefault();
      const notes = textarea.value.trim();
      if (!notes) {
        errorEl.textContent = "Write what fixed it before resolving.";
        errorEl.hidden = false;
        textarea.setAttribute("aria-invalid", "true");
        textarea.focus();
        return;
      }
      sessionStorage.setItem(chipsKey(id), "1"); // the first send hides the suggestions
      chipsBox.hidden = true;
      resolveBtn.disabled = releaseBtn.disabled = true;
      try {
        const resolved = await api.resolve(id, notes);
        sessionStorage.removeItem(draftKey(id));
        update(resolved);
        toast("Resolved. The junior can see your notes.");
      } catch (error) {
        resolveBtn.disabled = releaseBtn.disabled = false;
        if (error.status === 401) return;
        errorEl.textContent = errorMessage(error);
        errorEl.hidden = false;
      }
    }

    async function release() {
      resolveBtn.disabled = releaseBtn.disabled = true;
      try {
        update(await api.release(id));
        toast("Released back to the queue.");
      } catch (error) {
        resolveBtn.disabled = releaseBtn.disabled = false;
        if (error.status !== 401) toast(errorMessage(error), { kind: "error" });
      }
    }

    return { el, refresh, focus: () => textarea.focus() };
  }

  // --- assessment ----------------------------------------------------------------------

  function renderAssessment() {
    const a = handoff.ai_assessment_data;
    const state = handoff.assessment_status === "ready" && a ? "ready" : handoff.assessment_status;
    assessment.dataset.state = state;
    assessment.setAttribute("aria-busy", state === "pending" ? "true" : "false");
    const title = h("h2", { id: "assess-h" }, "AI assessment");
    if (state === "ready") {
      fill(assessment, 
        h("div", { class: "panel-head" }, title, h("span", { class: `badge conf conf-${a.confidence}` }, `${a.confidence} confidence`)),
        h("p", { class: "prose lead" }, a.summary),
        a.likely_causes.length ? [h("h3", {}, "Likely causes"), h("ul", { class: "list" }, a.likely_causes.map((c) => h("li", {}, c)))] : null,
        a.suggested_steps.length ? [h("h3", {}, "Suggested next steps"), h("ol", { class: "list" }, a.suggested_steps.map((c) => h("li", {}, c)))] : null,
        h("p", { class: "muted small" }, `By ${a.generator} · `, h("time", { datetime: a.generated_at, title: absoluteTime(a.generated_at) }, timeAgo(a.generated_at))),
      );
    } else if (state === "failed") {
      const retry = h("button", { type: "button", class: "btn btn-secondary", onclick: retryAssessment }, "Retry assessment");
      fill(assessment, 
        title,
        h("div", { class: "notice notice-error" },
          h("p", {}, "The assessment could not be generated."),
          isSenior ? retry : h("p", { class: "small" }, "A senior can retry it."),
        ),
      );
    } else {
      fill(assessment, 
        title,
        h("p", { class: "muted" }, "Assessing this escalation… it usually takes a few seconds and appears here by itself."),
        h("div", { class: "skeleton", "aria-hidden": "true" }, h("span", {}), h("span", {}), h("span", {})),
      );
    }
  }

  async function retryAssessment(event) {
    const button = event.currentTarget;
    button.disabled = true;
    try {
      update(await api.retryAssessment(handoff.id));
    } catch (error) {
      button.disabled = false;
      if (error.status !== 401) toast(errorMessage(error), { kind: "error" });
      if (error.status === 409) reload();
    }
  }

  // --- what the junior tried -------------------------------------------------------------

  function renderContext() {
    const s = handoff.snapshot;
    const tried = s.tried_steps.length
      ? h("ol", { class: "steps" }, s.tried_steps.map((step) => h("li", {},
          h("span", { class: "step-what" }, step.description),
          step.outcome ? h("span", { class: "step-outcome" }, step.outcome) : null,
        )))
      : h("p", { class: "muted" }, "No steps recorded.");
    fill(context, 
      h("section", { class: "panel", "aria-labelledby": "tried-h" },
        h("h2", { id: "tried-h" }, "What has been tried"),
        tried,
        h("h3", {}, "Engineer notes"),
        handoff.engineer_notes ? h("p", { class: "prose" }, handoff.engineer_notes) : h("p", { class: "muted" }, "No notes."),
      ),
      s.transcript && s.transcript.length
        ? h("details", { class: "panel transcript" },
            h("summary", {}, `Session transcript (${s.transcript.length} message${s.transcript.length === 1 ? "" : "s"})`),
            h("ol", { class: "messages" }, s.transcript.map((m) => h("li", { class: `msg msg-${m.role}` },
              h("span", { class: "msg-role" }, m.role), h("span", { class: "prose" }, m.content)))),
          )
        : null,
    );
  }

  function renderActivity() {
    const items = [...activity.values()].sort((a, b) => a.id - b.id);
    fill(activityList, items.map((e) => h("li", {},
      h("span", {}, (ACTIVITY[e.type] || (() => e.type))(e)), " ", timeEl(e.at))));
  }

  // --- live -----------------------------------------------------------------------------------

  function onEvent({ detail }) {
    const data = detail.data;
    if (data.handoff_id !== handoffId) return;
    activity.set(data.id, data);
    if (!handoff) return;
    update(data.handoff);
    renderActivity();
  }

  function reload() {
    load();
  }

  ctx.stream.addEventListener("event", onEvent);
  ctx.stream.addEventListener("resync", reload);
  load();
  return {
    title: "Handoff",
    focusHeading: false,
    unmount() {
      ctx.stream.removeEventListener("event", onEvent);
      ctx.stream.removeEventListener("resync", reload);
    },
  };
}
