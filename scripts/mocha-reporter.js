"use strict";
// Mocha's spec output, then one plain closing line `N passed, N failed` (and
// `, N skipped`). A run that executed no test (no suite matched, a --grep
// that matches nothing, every test skipped) fails: it says so on stderr and
// the exit status is non-zero, so CI cannot mistake it for a green run.
const Mocha = require("mocha");
const { EVENT_RUN_END } = Mocha.Runner.constants;

class SpecWithSummary extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(EVENT_RUN_END, () => {
      const stats = runner.stats || { passes: 0, failures: 0, pending: 0 };
      const executed = stats.passes + stats.failures;
      if (executed === 0) {
        // The runner hands its failure count to mocha's exit code after this
        // listener (registered before the runner's own) has run.
        runner.failures = Math.max(runner.failures || 0, 1);
      }
      const skipped = stats.pending ? `, ${stats.pending} skipped` : "";
      // After the spec reporter's own epilogue.
      process.nextTick(() => {
        if (executed === 0) console.error("mocha-reporter: no test ran; a run without tests fails");
        console.log(`${stats.passes} passed, ${stats.failures} failed${skipped}`);
      });
    });
  }
}

module.exports = SpecWithSummary;
