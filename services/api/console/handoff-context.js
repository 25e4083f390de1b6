// The handoff page's header (badges, summary, who escalated, the snapshot's
// facts) and what the junior tried (steps, notes, transcript).

import { domainChip, fill, h, priorityBadge, slaBadge, statusBadge, timeEl } from "./ui.js";

function fact(label, value) {
  return h("div", { class: "fact" }, h("dt", {}, label), h("dd", {}, value));
}

/** Redraw the header; a keyboard user focused on it keeps the focus. */
export function renderHead(head, handoff) {
  const s = handoff.snapshot;
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

function transcript(s) {
  if (!s.transcript || !s.transcript.length) return null;
  return h("details", { class: "panel transcript" },
    h("summary", {}, `Session transcript (${s.transcript.length} message${s.transcript.length === 1 ? "" : "s"})`),
    h("ol", { class: "messages" }, s.transcript.map((m) => h("li", { class: `msg msg-${m.role}` },
      h("span", { class: "msg-role" }, m.role), h("span", { class: "prose" }, m.content)))),
  );
}

/** What has been tried, the engineer's notes and the transcript (drawn once). */
export function renderContext(context, handoff) {
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
    transcript(s),
  );
}
