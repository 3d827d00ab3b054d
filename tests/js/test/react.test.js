// useDAGStream under React 18 and React 19, in strict mode (React 19 mounts
// effects, unmounts and mounts them again): one connection, live state, commands,
// clean unmount.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";
import { WebSocket } from "ws";

import {
  FakeServer,
  countingWebSocket,
  nodeState,
  snapshot,
  within,
} from "../support/fake-server.js";

const here = dirname(fileURLToPath(import.meta.url));
const REACTS = {
  18: { react: "react-18", "react-test-renderer": "react-test-renderer-18" },
  19: {},
};

/** The harness bundled against one React version; returns its module. */
async function harness(version) {
  const outfile = join(here, "..", "build", `hook-harness-react${version}.mjs`);
  mkdirSync(dirname(outfile), { recursive: true });
  await build({
    entryPoints: [join(here, "..", "support", "hook-harness.js")],
    bundle: true,
    format: "esm",
    platform: "node",
    outfile,
    alias: REACTS[version],
    // The client's folder has no node_modules: React comes from ours, as from an app's.
    nodePaths: [join(here, "..", "node_modules")],
    define: { "process.env.NODE_ENV": '"development"' }, // strict mode's double effects
    logLevel: "warning",
  });
  return import(pathToFileURL(outfile).href);
}

/** Hook results as they render; `until(test)` waits for one that passes. */
class Renders {
  constructor() {
    this.all = [];
    this.waiters = [];
  }

  push = (result) => {
    this.all.push(result);
    for (const waiter of [...this.waiters]) waiter();
  };

  get latest() {
    return this.all[this.all.length - 1];
  }

  until(test, what) {
    return within(
      new Promise((resolve) => {
        const check = () => {
          if (this.latest && test(this.latest)) {
            this.waiters.splice(this.waiters.indexOf(check), 1);
            resolve(this.latest);
          }
        };
        this.waiters.push(check);
        check();
      }),
      what,
    );
  }
}

let server;
/** Mounted views, unmounted after each test even when it fails. */
const views = [];
before(async () => {
  server = await FakeServer.start();
});
after(() => server.stop());
afterEach(() => {
  for (const view of views.splice(0)) view.unmount();
});

for (const version of Object.keys(REACTS)) {
  describe(`React ${version}, strict mode`, () => {
    let react;
    /** Mount, and remember to unmount. */
    const mount = (...args) => {
      const view = react.mount(...args);
      views.push(view);
      return view;
    };
    before(async () => {
      react = await harness(version);
      assert.equal(react.version.split(".")[0], version);
    });

    test("one connection; live state; commands; closed on unmount", async () => {
      const renders = new Renders();
      const counted = countingWebSocket();
      const options = { baseUrl: server.baseUrl, WebSocket: counted.WebSocket, random: () => 0 };
      const view = mount("d-1", options, renders.push);
      const conn = await server.accept();
      await server.assertNoOtherConnection();
      assert.equal(counted.made(), 1, "one socket, however often strict mode mounted");
      // React 18's test renderer mounts once; its strict double mount (react-dom) is
      // covered in Chromium by tests/test_js_client_browser.py.
      assert.equal(view.mounts(), version === "19" ? 2 : 1);
      assert.equal(conn.url.pathname, "/ws/dags/d-1/");
      conn.send(snapshot(1));
      const open = await renders.until(
        (r) => r.status === "open" && r.dag !== null,
        "the snapshot",
      );
      assert.equal(open.lastSeq, 1);
      conn.send(nodeState(2, "a", "running"));
      const live = await renders.until((r) => r.lastSeq === 2, "an event");
      assert.equal(live.dag.nodes[0].status, "running");

      const decided = live.decide("a", "approve");
      const frame = await conn.next();
      assert.deepEqual(
        [frame.type, frame.node_id, frame.decision],
        ["human_decision", "a", "approve"],
      );
      conn.send({ type: "ack", id: frame.id });
      assert.deepEqual(await decided, { type: "ack", id: frame.id });

      view.unmount();
      assert.equal(await within(conn.closed, "the socket's close"), 1000);
      await server.assertNoOtherConnection(); // unmounted: no reconnect
    });

    test("a new dagId closes the old connection and opens one for it", async () => {
      const renders = new Renders();
      const view = mount("d-1", { baseUrl: server.baseUrl, WebSocket }, renders.push);
      const first = await server.accept();
      first.send(snapshot(1));
      await renders.until((r) => r.dag?.dag_id === "d-1", "d-1's snapshot");
      view.update("d-2");
      const second = await server.accept();
      assert.equal(second.url.pathname, "/ws/dags/d-2/");
      assert.equal(await within(first.closed, "d-1's close"), 1000);
      second.send(snapshot(5, ["x"], "d-2"));
      const state = await renders.until((r) => r.dag?.dag_id === "d-2", "d-2's snapshot");
      assert.equal(state.lastSeq, 5);
      view.unmount();
      await within(second.closed, "d-2's close");
    });

    test("without a dagId nothing connects and commands reject", async () => {
      const renders = new Renders();
      const view = mount(null, { baseUrl: server.baseUrl, WebSocket }, renders.push);
      const idle = await renders.until((r) => r.status === "closed", "a render");
      assert.equal(idle.dag, null);
      await assert.rejects(idle.pause(), /no DAG/);
      await server.assertNoOtherConnection();
      view.unmount();
    });
  });
}
