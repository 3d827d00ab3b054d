// A component that uses useDAGStream, rendered by react-test-renderer in strict
// mode. test/react.test.js bundles this file once per React version (esbuild
// maps "react" and "react-test-renderer" to that version's packages).
import { StrictMode, createElement, useEffect } from "react";
import TestRenderer from "react-test-renderer";

import { useDAGStream } from "../../../dagstream_app/static/dagstream_app/client/react.js";

export { version } from "react";

/**
 * Render `<StrictMode><Watch/></StrictMode>`; every render's hook result goes to `onRender`.
 * `mounts()` counts how often the component's effects were mounted: 2 where strict
 * mode double-mounts (React 19's test renderer; React 18's does not, react-dom does).
 * @returns {{ update(dagId: string | null): void, unmount(): void, mounts(): number }}
 */
export function mount(dagId, options, onRender) {
  let mounts = 0;
  function Watch({ id }) {
    onRender(useDAGStream(id, options));
    useEffect(() => {
      mounts++;
    }, []);
    return null;
  }
  const tree = (id) => createElement(StrictMode, null, createElement(Watch, { id }));
  // Concurrent: React 18 double-invokes effects in strict mode only on a concurrent root.
  const renderer = TestRenderer.create(tree(dagId), { unstable_isConcurrent: true });
  let mounted = true;
  return {
    update: (id) => renderer.update(tree(id)),
    mounts: () => mounts,
    unmount: () => {
      if (mounted) renderer.unmount();
      mounted = false;
    },
  };
}
