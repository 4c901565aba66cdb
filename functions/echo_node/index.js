// Node.js handler: returns the event it was given, with the request id.
exports.handler = async (event, context) => ({ event, requestId: context.awsRequestId });
