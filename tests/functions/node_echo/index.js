// Fixture (nodejs20.x, async handler): returns the event and context fields, and the call's trace as
// process.env has it (and, when the event asks, as a child process sees it).
const { execFileSync } = require("child_process");

exports.handler = async (event, context) => {
  console.log("node echo", context.awsRequestId);
  const child = event && event.child
    ? execFileSync(process.execPath, ["-e", "process.stdout.write(process.env._X_AMZN_TRACE_ID || '')"]).toString()
    : undefined;
  return {
    event,
    function_name: context.functionName,
    request_id: context.awsRequestId,
    memory_limit_in_mb: context.memoryLimitInMB,
    remaining_ms: context.getRemainingTimeInMillis(),
    trace: process.env._X_AMZN_TRACE_ID,
    child_trace: child,
  };
};
