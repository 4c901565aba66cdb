// Fixture (nodejs20.x, async handler): returns the event and context fields.
exports.handler = async (event, context) => {
  console.log("node echo", context.awsRequestId);
  return {
    event,
    function_name: context.functionName,
    request_id: context.awsRequestId,
    memory_limit_in_mb: context.memoryLimitInMB,
    remaining_ms: context.getRemainingTimeInMillis(),
  };
};
