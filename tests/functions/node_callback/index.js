// Fixture (nodejs20.x, callback handler): answers through callback(err, result) after a tick;
// {"fail": true} answers with an Error.
exports.handler = (event, context, callback) => {
  setTimeout(() => {
    if (event && event.fail) callback(new Error("callback boom"));
    else callback(null, { ok: true, event, request_id: context.awsRequestId });
  }, 5);
};
