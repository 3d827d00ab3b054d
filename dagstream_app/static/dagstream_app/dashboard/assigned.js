// Gate cards that wait for other people. A card rendered with the page is read-only for
// whoever its assignees do not name (render/regions.py), but one that arrives live is
// shared by everyone who may decide the run's gates. This makes such a card read-only
// here too: its form goes and "Waiting for a decision." takes its place. It is a
// convenience: the server refuses a vote from someone a gate does not name either way.
// Which names name the viewer is the server's rule (permissions.Voter.names): the page
// hands them over (viewerNames in #ds-config), and this only compares.

import { say } from "./words.js";

/**
 * Makes the pending cards that name none of `names` read-only. A card carries
 * data-assignees (a JSON list of names) only when it names someone.
 * @param {string[]} names
 */
function readOnlyForOthers(names) {
  for (const card of document.querySelectorAll(".gate--pending[data-assignees]")) {
    const form = card.querySelector(".gate-form");
    const assignees = JSON.parse(card.dataset.assignees);
    if (!form || assignees.some((name) => names.includes(name))) continue;
    const line = document.createElement("p");
    line.className = "gate-outcome muted";
    line.textContent = say("waitingDecision");
    form.replaceWith(line);
  }
}

/**
 * Keeps cards read-only for the viewer as they arrive: after a live message's
 * out-of-band swaps, and after a swap htmx made from a request. The page and a
 * decision's reply are rendered read-only by the server already.
 * @param {string[] | null} names the names in a gate's assignees that name the viewer;
 *   null: someone who may not decide gates (their cards already show disabled buttons),
 *   or a page whose gate cards do not arrive live.
 */
export function keepGatesForOthersReadOnly(names) {
  if (!names) return;
  const apply = () => readOnlyForOthers(names);
  document.addEventListener("htmx:wsAfterMessage", apply);
  document.addEventListener("htmx:afterSwap", apply);
}
