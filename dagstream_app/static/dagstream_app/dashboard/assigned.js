// Gate cards that wait for other people. A card rendered with the page is read-only for
// whoever its assignees do not name (render/regions.py), but one that arrives live is
// shared by everyone who may decide the run's gates. This makes such a card read-only
// here too: its form goes and "Waiting for a decision." takes its place. It is a
// convenience: the server refuses a vote from someone a gate does not name either way.

import { say } from "./words.js";

const GROUP_PREFIX = "group:";

/**
 * True if `assignees` names the viewer or one of their groups (the rule
 * permissions.Voter.named_in keeps on the server).
 * @param {{username: string, groups: string[]}} viewer
 * @param {string[]} assignees
 */
function namesViewer(viewer, assignees) {
  return assignees.some((name) =>
    name.startsWith(GROUP_PREFIX)
      ? viewer.groups.includes(name.slice(GROUP_PREFIX.length))
      : name === viewer.username,
  );
}

/**
 * Makes the pending cards that wait for others read-only for `viewer`. A card carries
 * data-assignees (a JSON list of names) only when it names someone.
 * @param {{username: string, groups: string[]}} viewer
 */
function readOnlyForOthers(viewer) {
  for (const card of document.querySelectorAll(".gate--pending[data-assignees]")) {
    const form = card.querySelector(".gate-form");
    if (!form || namesViewer(viewer, JSON.parse(card.dataset.assignees))) continue;
    const line = document.createElement("p");
    line.className = "gate-outcome muted";
    line.textContent = say("waitingDecision");
    form.replaceWith(line);
  }
}

/**
 * Keeps cards read-only for `viewer` as they arrive: after a live message's out-of-band
 * swaps, and after a swap htmx made from a request. The page and a decision's reply are
 * rendered read-only by the server already.
 * @param {{username: string, groups: string[]} | null} viewer null: someone who may not
 *   decide gates (their cards already show disabled buttons), or a page without one.
 */
export function keepGatesForOthersReadOnly(viewer) {
  if (!viewer) return;
  const apply = () => readOnlyForOthers(viewer);
  document.addEventListener("htmx:wsAfterMessage", apply);
  document.addEventListener("htmx:afterSwap", apply);
}
