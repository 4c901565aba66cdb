// Node.js handler: answers with the event it was given, the Node.js version and its own name.
exports.handler = async (event, context) => ({
  echo: event,
  node: process.version,
  functionName: context.functionName,
  requestId: context.awsRequestId,
});
