"use strict";
// Mocha's spec output, then one plain closing line `N passed, N failed` (and
// `, N skipped`), so a CI run that executed no test is visible as such.
const Mocha = require("mocha");
const { EVENT_RUN_END } = Mocha.Runner.constants;

class SpecWithSummary extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(EVENT_RUN_END, () => {
      const stats = runner.stats || { passes: 0, failures: 0, pending: 0 };
      const skipped = stats.pending ? `, ${stats.pending} skipped` : "";
      // After the spec reporter's own epilogue.
      process.nextTick(() => console.log(`${stats.passes} passed, ${stats.failures} failed${skipped}`));
    });
  }
}

module.exports = SpecWithSummary;
