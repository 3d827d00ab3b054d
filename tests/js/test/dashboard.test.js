// The dashboard's reconnect policy (dashboard/live.js) is the client's (client/backoff.js):
// full jitter below a capped, doubling ceiling, computed by the one shared function.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import * as backoff from "../../../dagstream_app/static/dagstream_app/client/backoff.js";
import * as client from "../../../dagstream_app/static/dagstream_app/client/client.js";
import {
  PAGE_BACKOFF,
  reconnectDelay,
  startLive,
} from "../../../dagstream_app/static/dagstream_app/dashboard/live.js";
import { formatDuration } from "../../../dagstream_app/static/dagstream_app/dashboard/timers.js";

/** A seeded source in [0, 1) (mulberry32): the same draws on every run. */
function seeded(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("dashboard reconnect backoff", () => {
  test("one function: the client exports the shared one, the page calls it", () => {
    assert.equal(client.backoffDelay, backoff.backoffDelay);
    const draws = seeded(17);
    for (let retry = 0; retry < 12; retry++) {
      const r = draws();
      assert.equal(
        reconnectDelay(retry, () => r),
        backoff.backoffDelay(retry, () => r, PAGE_BACKOFF),
      );
    }
  });

  test("the page hands it to the ws extension as its reconnect delay", (t) => {
    const htmx = { config: {} };
    Object.assign(globalThis, { htmx, document: { addEventListener() {} } });
    t.after(() => {
      delete globalThis.htmx;
      delete globalThis.document;
    });
    startLive({ unauthenticated: 4001, forbidden: 4003, not_found: 4004, try_again_later: 4013 });
    t.mock.method(Math, "random", () => 0);
    assert.equal(htmx.config.wsReconnectDelay(5), 0); // equal jitter would wait 4 s at least
    t.mock.method(Math, "random", () => 0.5);
    assert.equal(
      htmx.config.wsReconnectDelay(5),
      reconnectDelay(5, () => 0.5),
    );
  });

  test("full jitter: anywhere from 0 up to a ceiling that doubles from 1 s to 8 s", () => {
    const ceilings = [1000, 2000, 4000, 8000, 8000, 8000];
    ceilings.forEach((ceiling, retry) => {
      assert.equal(
        reconnectDelay(retry, () => 0),
        0,
      );
      assert.equal(
        reconnectDelay(retry, () => 0.999999),
        ceiling - 1,
      );
      const random = seeded(retry + 1);
      const delays = Array.from({ length: 4000 }, () => reconnectDelay(retry, random));
      const mean = delays.reduce((a, b) => a + b, 0) / delays.length;
      assert.ok(Math.min(...delays) >= 0 && Math.max(...delays) < ceiling);
      // Spread over the whole range, not its upper half (equal jitter's cap/2 + ...).
      assert.ok(Math.min(...delays) < ceiling * 0.05, `retry ${retry}`);
      assert.ok(Math.max(...delays) > ceiling * 0.95, `retry ${retry}`);
      assert.ok(Math.abs(mean - ceiling / 2) < ceiling * 0.05, `retry ${retry}: mean ${mean}`);
      assert.ok(delays.filter((d) => d < ceiling / 2).length > delays.length * 0.45);
    });
  });
});

describe("dashboard timers", () => {
  test("durations read as people say them", () => {
    assert.deepEqual([0.35, 4.24, 185, 7620, -3].map(formatDuration), [
      "350 ms",
      "4.2 s",
      "3 m 05 s",
      "2 h 07 m",
      "0 ms",
    ]);
  });
});
