// The page tests/test_js_client_browser.py opens: the example <Run> in strict mode,
// on another origin than the dagstream server, with tickets from its own backend.
// It counts the sockets it makes (window.sockets) so the test sees strict mode's
// double mount open one connection.
import { StrictMode, version } from "react";
import { createRoot } from "react-dom/client";
import { ticketFetcher, type ClientOptions } from "@dagstream/client";

import { Run } from "./App.tsx";

declare global {
  interface Window {
    sockets: number;
  }
}

const params = new URLSearchParams(location.search);
const dagId = params.get("dag") ?? "";
window.sockets = 0;
class CountedWebSocket extends WebSocket {
  constructor(...args: ConstructorParameters<typeof WebSocket>) {
    super(...args);
    window.sockets++;
  }
}
const options: ClientOptions = {
  baseUrl: params.get("server") ?? undefined, // the dagstream server, another origin
  ticket: ticketFetcher(`/ticket/?dag=${encodeURIComponent(dagId)}`), // this page's backend
  WebSocket: CountedWebSocket,
  backoff: { initialMs: 500, maxMs: 2000 }, // short outages in the test
};
document.documentElement.dataset.react = version;
createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <Run dagId={dagId} options={options} />
  </StrictMode>,
);
