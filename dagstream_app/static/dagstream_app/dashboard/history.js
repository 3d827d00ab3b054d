// The history page's slider (#replay-seq): the step buttons (.js-step) move it and the
// number beside it (#replay-n) follows it.

export function listenHistory() {
  document.addEventListener("click", (e) => {
    const step = e.target instanceof Element && e.target.closest(".js-step");
    if (!step) return;
    const range = document.getElementById("replay-seq");
    const next = Math.min(+range.max, Math.max(+range.min, +range.value + +step.dataset.step));
    if (next !== +range.value) {
      range.value = next;
      range.dispatchEvent(new Event("input", { bubbles: true }));
    }
  });
  document.addEventListener("input", (e) => {
    if (e.target && e.target.id === "replay-seq") {
      const out = document.getElementById("replay-n");
      if (out) out.textContent = e.target.value;
    }
  });
}
