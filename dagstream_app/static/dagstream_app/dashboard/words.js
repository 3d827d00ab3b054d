// The words the dashboard's scripts show. Python renders them into #ds-config in the
// page's language (render/format.py, page_text); main.js hands them over before
// anything is shown. Until then (and in tests) they are the English originals.

const words = {
  connecting: "Connecting…",
  reconnecting: "Reconnecting…",
  live: "Live",
  disconnected: "Disconnected",
  lost: "Connection lost. What you see may be out of date; reconnecting…",
  signedOut: "Signed out. Sign in again to follow this run.",
  forbidden: "You no longer have access to this run.",
  notFound: "This run no longer exists.",
  closed: "Disconnected from the server.",
  reload: "%(why)s Reload the page to continue.",
  running: "Running",
  ms: "%(ms)s ms",
  s: "%(s)s s",
  m: "%(m)s m %(s)s s",
  h: "%(h)s h %(m)s m",
  decimal: ".",
  alsoHere: "Also looking at this run: %(names)s",
  writing: "%(names)s is writing…",
  writingMany: "%(names)s are writing…",
  waitingDecision: "Waiting for a decision.",
};

/**
 * Use the page's words (missing ones stay English).
 * @param {Record<string, string> | undefined} text
 */
export function useWords(text) {
  Object.assign(words, text || {});
}

/**
 * A word or sentence, its `%(name)s` placeholders filled in from `values`.
 * @param {string} key
 * @param {Record<string, string | number>} [values]
 * @returns {string}
 */
export function say(key, values = {}) {
  return words[key].replace(/%\((\w+)\)s/g, (_, name) => String(values[name]));
}
