// One handoff: what the junior saw and tried, the AI assessment (filling in
// place when its event arrives), where it is routed and its escalation
// timeline, and the senior's claim / release / resolve / reassign. This module
// loads and keeps the page's state (the full handoff, fetched: events carry a
// slim one); the panels are their own modules.

import { api } from "./api.js";
import { assessmentPanel } from "./handoff-assessment.js";
import { renderContext, renderHead } from "./handoff-context.js";
import { reassignPanel } from "./handoff-reassign.js";
import { statusPanel } from "./handoff-status.js";
import { activityPanel, routingPanel } from "./handoff-timeline.js";
import { workPanel } from "./handoff-work.js";
import { isClaimingRole } from "./relevance.js";
import { HandoffFollower, isNewer } from "./store.js";
import { errorMessage, fill, h } from "./ui.js";

function layout(main, isSenior) {
  const parts = {
    head: h("header", { class: "hv-head" }),
    aside: h("div", { class: "hv-aside" }),
    context: h("div", { class: "hv-context" }),
    assessment: assessmentPanel(),
    routing: routingPanel(),
    reassign: reassignPanel(),
    activity: activityPanel(),
    status: h("p", { class: "muted" }, "Loading…"),
  };
  parts.body = h("div", { class: "hv-grid", hidden: true },
    h("div", { class: "hv-main" }, parts.assessment.el, parts.context),
    h("div", { class: "hv-side" }, parts.aside, parts.reassign.el, parts.routing.el, parts.activity.el),
  );
  const back = isSenior
    ? h("a", { class: "back", href: "#/queue" }, "← Queue")
    : h("a", { class: "back", href: "#/mine" }, "← My escalations");
  fill(main, back, parts.status, parts.head, parts.body);
  return parts;
}

export function mountHandoff(main, ctx, handoffId) {
  const { claims } = ctx;
  const isSenior = isClaimingRole(claims.role);
  const parts = layout(main, isSenior);
  const events = new Map();
  let work = null; // the notes panel while this user holds the claim
  const page = { ctx, claims, isSenior, handoff: null, update, reload: load };

  const sortedEvents = () => [...events.values()].sort((a, b) => a.id - b.id);

  function renderAside(previous) {
    const mine = page.handoff.status === "claimed" && page.handoff.claimed_by_id === claims.sub;
    if (!mine) {
      work = null;
      fill(parts.aside, statusPanel(page));
      return;
    }
    if (!work) {
      work = workPanel(page);
      fill(parts.aside, work.el);
      if (previous && previous.status === "pending") work.focus();
    }
    work.refresh();
  }

  function renderHistory() {
    const list = sortedEvents();
    parts.routing.render(page.handoff, list);
    parts.activity.render(list);
  }

  function update(next) {
    if (!isNewer(next, page.handoff)) return;
    const previous = page.handoff;
    page.handoff = next;
    ctx.setTitle(next.snapshot.problem_summary);
    renderHead(parts.head, next);
    renderAside(previous);
    parts.reassign.render(page);
    if (!previous || previous.assessment_status !== next.assessment_status || previous.ai_assessment_data !== next.ai_assessment_data) {
      parts.assessment.render(page);
    }
    if (!previous) renderContext(parts.context, next);
    renderHistory();
  }

  // Events that arrive before the first load has answered: its GET may have been
  // answered before them (an assessment failing within milliseconds of the create),
  // so each is followed once the handoff is shown.
  const arrivedWhileLoading = [];

  async function load() {
    try {
      const [loaded, history] = await Promise.all([api.getHandoff(handoffId), api.history(handoffId)]);
      for (const event of history.items) events.set(event.id, event);
      page.handoff = null;
      update(loaded);
      for (const data of arrivedWhileLoading.splice(0)) follower.follow(data.type, data.handoff, page.handoff);
      parts.status.hidden = true;
      parts.body.hidden = false;
      const heading = parts.head.querySelector("h1");
      if (heading && (document.activeElement === document.body || document.activeElement === main)) heading.focus();
    } catch (error) {
      if (error.status === 401) return;
      parts.status.textContent = error.status === 404 ? "This handoff does not exist, or belongs to another organisation." : errorMessage(error);
      parts.status.className = "notice notice-error";
    }
  }

  // Events carry a slim handoff: merged into the full one shown, or (an assessment,
  // a resolution) the full handoff fetched again.
  const follower = new HandoffFollower(update);

  function onEvent({ detail }) {
    const data = detail.data;
    if (data.handoff_id !== handoffId) return;
    events.set(data.id, data);
    if (!page.handoff) {
      arrivedWhileLoading.push(data);
      return;
    }
    follower.follow(data.type, data.handoff, page.handoff);
    renderHistory();
  }

  const onPresence = () => page.handoff && parts.reassign.render(page);
  ctx.stream.addEventListener("event", onEvent);
  ctx.stream.addEventListener("resync", load);
  ctx.presence?.addEventListener("change", onPresence);
  load();
  return {
    title: "Handoff",
    focusHeading: false,
    unmount() {
      ctx.stream.removeEventListener("event", onEvent);
      ctx.stream.removeEventListener("resync", load);
      ctx.presence?.removeEventListener("change", onPresence);
    },
  };
}
