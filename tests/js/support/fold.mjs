// Fold events into a snapshot with the client's store, as the browser would:
//   {"snapshot": <DagSnapshot>, "frames": [[event, ...], ...]} on stdin
//   -> the resulting DagSnapshot on stdout.
// Each frame is applied as one batch. tests/test_js_client.py compares the result
// with the server's own snapshot.
import { text } from "node:stream/consumers";

import {
  applyEvents,
  fromSnapshot,
} from "../../../dagstream_app/static/dagstream_app/client/store.js";

const { snapshot, frames } = JSON.parse(await text(process.stdin));
let dag = fromSnapshot(snapshot);
for (const events of frames) dag = applyEvents(dag, events);
process.stdout.write(JSON.stringify(dag));
