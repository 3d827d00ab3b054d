// Refusals stay in their card. A decision or control refused (400, 403, 404, 409)
// answers with its card and the message, marked X-Dagstream-Fragment; head.html's
// responseHandling swaps 4xx like a success. With DEBUG on, django-htmx's script (a
// listener on document) would replace the whole page with any 4xx response and the
// decision would be lost: on window, in the capture phase, this runs first and keeps
// the event from reaching it.

export function keepRefusalsInTheirCard() {
  window.addEventListener(
    "htmx:beforeOnLoad",
    (e) => {
      const xhr = e.detail && e.detail.xhr;
      if (xhr && xhr.getResponseHeader("X-Dagstream-Fragment")) e.stopPropagation();
    },
    true,
  );
}
