/**
 * Ends every test run with one plain line that CI and people read alike:
 * `N passed, N failed` (and `, N skipped` when any were).
 */
class SummaryReporter {
  onRunComplete(_contexts, results) {
    // A suite that fails to load has no test results of its own; count it as one failure.
    const brokenSuites = results.testResults.filter((r) => r.testExecError && r.numFailingTests === 0).length;
    const failed = results.numFailedTests + brokenSuites;
    const skipped = results.numPendingTests + results.numTodoTests;
    process.stdout.write(`\n${results.numPassedTests} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
  }
}
module.exports = SummaryReporter;
