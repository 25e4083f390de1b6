// The shared relevance cases (relevance_cases.json) as the console sees them: the
// person as GET /me plus the staffed teams (relevance.js ``me``), the handoff as
// an event carries it. tests/api/test_relevance_cases.py builds the same cases
// through the API and checks these shapes against its answers.

import { readFileSync } from "node:fs";

export const CASES = JSON.parse(readFileSync(new URL("./relevance_cases.json", import.meta.url), "utf8"));

/** ``me`` for ``person``: GET /me's id, role and teams, with the teams that have members. */
export function meOf(person) {
  const teams = Object.entries(CASES.teams).filter(([, members]) => members.includes(person));
  const staffed = Object.entries(CASES.teams).filter(([, members]) => members.length > 0);
  return {
    id: person,
    role: CASES.people[person],
    teams: teams.map(([id]) => ({ id, name: id })),
    staffedTeams: new Set(staffed.map(([id]) => id)),
  };
}

/** The case's handoff as an event carries it (the fields relevance.js reads). */
export function handoffOf(spec) {
  const team = spec.target === "all_seniors" ? null : spec.team;
  return {
    id: "h-1",
    status: spec.status,
    escalation_target: { target: spec.target, team_id: team, team_name: team },
    assigned_to_id: spec.assigned_to || null,
  };
}
