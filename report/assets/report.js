// Counterexample explorers: one step shown at a time, moved by buttons, the timeline and the
// arrow keys. Without this script every step stays visible, one after the other.
"use strict";
(function () {
  const explorers = Array.from(document.querySelectorAll(".explorer"));
  let active = explorers[0] || null;

  function show(explorer, index) {
    const count = Number(explorer.dataset.steps);
    const target = Math.max(0, Math.min(count - 1, index));
    explorer.dataset.current = String(target);
    for (const element of explorer.querySelectorAll(".step, .timeline li")) {
      element.classList.toggle("current", Number(element.dataset.step) === target);
    }
    explorer.querySelector(".position").textContent = "step " + (target + 1) + " of " + count;
    explorer.querySelector('[data-go="first"]').disabled = target === 0;
    explorer.querySelector('[data-go="prev"]').disabled = target === 0;
    explorer.querySelector('[data-go="next"]').disabled = target === count - 1;
    explorer.querySelector('[data-go="last"]').disabled = target === count - 1;
    // Keep the current entry in the timeline's view without scrolling the page.
    const entry = explorer.querySelector('.timeline li[data-step="' + target + '"]');
    const list = entry.parentElement;
    if (entry.offsetTop < list.scrollTop) list.scrollTop = entry.offsetTop;
    const bottom = entry.offsetTop + entry.offsetHeight - list.clientHeight;
    if (bottom > list.scrollTop) list.scrollTop = bottom;
  }

  function go(explorer, where) {
    const current = Number(explorer.dataset.current);
    const moves = { first: 0, prev: current - 1, next: current + 1, last: Number(explorer.dataset.steps) - 1 };
    show(explorer, moves[where]);
  }

  for (const explorer of explorers) {
    explorer.classList.add("live");
    show(explorer, 0);
    explorer.addEventListener("click", function (event) {
      active = explorer;
      const button = event.target.closest("button");
      if (!button) return;
      if (button.dataset.go) go(explorer, button.dataset.go);
      else if (button.dataset.step) show(explorer, Number(button.dataset.step));
    });
    explorer.addEventListener("focusin", function () { active = explorer; });
    explorer.querySelector("[data-only-changed]").addEventListener("change", function (event) {
      explorer.classList.toggle("only-changed", event.target.checked);
    });
  }

  const keys = { ArrowLeft: "prev", ArrowRight: "next", Home: "first", End: "last" };
  document.addEventListener("keydown", function (event) {
    const where = keys[event.key];
    if (!where || !active || event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.target.matches && event.target.matches("input[type=text], textarea")) return;
    // Home and End scroll the page unless an explorer has the focus.
    if ((where === "first" || where === "last") && !active.contains(document.activeElement)) return;
    event.preventDefault();
    go(active, where);
  });
})();
