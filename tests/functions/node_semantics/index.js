// Fixture (nodejs20.x): the corners of the Node.js programming model, as the runtime interface client runs
// them. `handler` is a plain (not async) function; event.mode picks what it does:
//   "errorlike": throws a plain object {name, message, stack} (an error from another realm looks like this);
//   "reject_undefined": returns Promise.reject(undefined);
//   "forget": neither calls the callback nor returns a promise (answered null once the event loop empties);
//   "forget_after_timer": the same, with a 20 ms timer still pending when it returns;
//   anything else: returns {ok: true} synchronously through the callback.
// `never` is an async function whose promise never settles.
exports.handler = (event, context, callback) => {
  switch (event.mode) {
    case "errorlike":
      throw { name: "CustomError", message: "a plain object", stack: "CustomError: a plain object\n    at fixture" };
    case "reject_undefined":
      return Promise.reject(undefined);
    case "forget":
      return undefined;
    case "forget_after_timer":
      setTimeout(() => console.log("timer fired"), 20);
      return undefined;
    default:
      callback(null, { ok: true });
  }
};

exports.never = async () => new Promise(() => {});
