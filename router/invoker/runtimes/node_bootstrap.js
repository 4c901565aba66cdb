// router's Node.js runtime: the Lambda Runtime API loop for `nodejs*.x` functions.
//
// Started by the invoker as `node node_bootstrap.js` with Lambda's environment (AWS_LAMBDA_RUNTIME_API,
// _HANDLER, LAMBDA_TASK_ROOT, ...) and the code folder as working directory. Behaves as AWS's Node.js
// runtime interface client does:
// - handler "dir/file.export.path": CommonJS (require) or ES module (.mjs, or "type": "module"); failures are
//   posted to /init/error as Runtime.ImportModuleError, Runtime.UserCodeSyntaxError,
//   Runtime.HandlerNotFound or Runtime.MalformedHandlerName, then the process exits;
// - the handler is called as handler(event, context, callback): a returned promise is awaited (a rejection
//   with undefined or null is the error "handled", as context.fail() is), otherwise the first
//   callback(err, result) answers (as with callbackWaitsForEmptyEventLoop = false);
// - a handler that neither answers nor leaves anything to wait for (the event loop empties, Node's
//   'beforeExit') answers null when it is a plain function, and fails with Runtime.NodeJsExit when it is an
//   async function or returned a promise that never settles, as the runtime interface client does;
// - errors are {errorType: err.name, errorMessage: err.message, trace: err.stack lines}, for Error objects
//   and for any object whose name, message and stack are non-empty strings; anything else is
//   {errorType: typeof err, errorMessage: String(err), trace: []}, as Lambda returns them;
// - console.log/info/warn/error/debug/trace lines are prefixed "<ISO time>\t<request id>\t<LEVEL>\t".
"use strict";

const http = require("http");
const fs = require("fs");
const path = require("path");
const util = require("util");
const { pathToFileURL } = require("url");

const [HOST, PORT] = (() => {
  const api = process.env.AWS_LAMBDA_RUNTIME_API;
  const i = api.lastIndexOf(":");
  return [api.slice(0, i), Number(api.slice(i + 1))];
})();
// The same API on a Unix socket, when the router offers one: no TCP stack per message.
const UNIX = process.env._ROUTER_RUNTIME_API_UNIX || null;
delete process.env._ROUTER_RUNTIME_API_UNIX;
const PREFIX = "/2018-06-01/runtime";
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
let currentRequestId = "";
let currentAnswered = true;

// _X_AMZN_TRACE_ID, set for each call as Lambda's runtime sets it. Not in the process's real environment:
// assigning one of process.env's variables is setenv(3), and glibc keeps every value it was ever given
// (they are never freed), so a trace id per call grew an instance by about 170 bytes a call, 33 MB in
// 200,000 calls. process.env is wrapped instead: this one variable lives in JavaScript, which is what
// process.env, Object.keys/JSON of it and child processes (child_process copies process.env) see; every
// other variable reads and writes the real environment as before (TZ still takes effect). Only getenv(3)
// from native code does not see the call's trace.
const TRACE = "_X_AMZN_TRACE_ID";
function wrapEnvironment() {
  const real = process.env;
  let trace = real[TRACE];
  delete real[TRACE];
  const own = (value) => ({ value, writable: true, enumerable: true, configurable: true });
  process.env = new Proxy(real, {
    get: (target, key) => (key === TRACE ? trace : target[key]),
    set(target, key, value) {
      if (key === TRACE) trace = String(value);
      else target[key] = value;
      return true;
    },
    has: (target, key) => (key === TRACE ? trace !== undefined : key in target),
    deleteProperty(target, key) {
      if (key === TRACE) trace = undefined;
      else delete target[key];
      return true;
    },
    ownKeys: (target) => (trace === undefined ? Reflect.ownKeys(target) : [...Reflect.ownKeys(target), TRACE]),
    getOwnPropertyDescriptor(target, key) {
      if (key !== TRACE) return Reflect.getOwnPropertyDescriptor(target, key);
      return trace === undefined ? undefined : own(trace);
    },
    defineProperty(target, key, descriptor) {
      if (key !== TRACE) return Reflect.defineProperty(target, key, descriptor);
      trace = String(descriptor.value);
      return true;
    },
  });
}

function request(method, urlPath, body, headers) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? Buffer.alloc(0) : Buffer.from(body);
    const req = http.request(
      {
        ...(UNIX ? { socketPath: UNIX } : { host: HOST, port: PORT }),
        method,
        path: PREFIX + urlPath,
        agent,
        headers: { ...(headers || {}), "Content-Length": data.length },
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(data);
  });
}

const NODEJS_EXIT_MESSAGE =
  "The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a " +
  "Promise that was never settled. For more information, see " +
  "https://nodejs.org/docs/latest/api/process.html#exit-codes";

// An error thrown across realms, or built by hand as {name, message, stack}, is reported like an Error.
function isErrorLike(err) {
  return (
    err !== null &&
    typeof err === "object" &&
    [err.name, err.message, err.stack].every((v) => typeof v === "string" && v.length > 0)
  );
}

function errorObject(err) {
  if (util.types.isNativeError(err) || err instanceof Error || isErrorLike(err)) {
    return {
      errorType: err.name,
      errorMessage: err.message,
      trace: typeof err.stack === "string" ? err.stack.split("\n") : [],
    };
  }
  try {
    return { errorType: typeof err, errorMessage: String(err), trace: [] };
  } catch (_) {
    return { errorType: "handled", errorMessage: "the error could not be turned into a string", trace: [] };
  }
}

function postError(urlPath, error) {
  return request("POST", urlPath, JSON.stringify(error), {
    "Content-Type": "application/json",
    "Lambda-Runtime-Function-Error-Type": error.errorType,
  });
}

// --- logging ------------------------------------------------------------------------------------------

function patchConsole() {
  const levels = { log: "INFO", info: "INFO", warn: "WARN", error: "ERROR", debug: "DEBUG", trace: "TRACE" };
  for (const [method, level] of Object.entries(levels)) {
    console[method] = (...args) => {
      const text = util.format(...args);
      process.stdout.write(`${new Date().toISOString()}\t${currentRequestId}\t${level}\t${text}\n`);
    };
  }
}

// --- handler loading ----------------------------------------------------------------------------------

class Fault extends Error {
  constructor(name, message) {
    super(message);
    this.name = name;
  }
}

async function loadModule(root, moduleName) {
  const base = path.resolve(root, moduleName);
  if (fs.existsSync(base + ".mjs")) return import(pathToFileURL(base + ".mjs").href);
  if (fs.existsSync(base + ".cjs")) return require(base + ".cjs");
  try {
    return require(base);
  } catch (e) {
    if (e && e.code === "ERR_REQUIRE_ESM") return import(pathToFileURL(base + ".js").href);
    throw e;
  }
}

async function loadHandler(taskRoot, handlerString) {
  const slash = handlerString.lastIndexOf("/");
  const moduleRoot = path.resolve(taskRoot, handlerString.slice(0, slash + 1));
  const match = handlerString.slice(slash + 1).match(/^([^.]*)\.(.*)$/);
  if (!match) throw new Fault("Runtime.MalformedHandlerName", "Bad handler");
  const [, moduleName, handlerPath] = match;
  let mod;
  try {
    mod = await loadModule(moduleRoot, moduleName);
  } catch (e) {
    if (e instanceof SyntaxError) throw new Fault("Runtime.UserCodeSyntaxError", `${e.name}: ${e.message}`);
    if (e && e.code === "MODULE_NOT_FOUND" && String(e.message).includes(path.join(moduleRoot, moduleName))) {
      throw new Fault("Runtime.ImportModuleError", `Error: Cannot find module '${moduleName}'`);
    }
    if (e && (e.code === "MODULE_NOT_FOUND" || e.code === "ERR_MODULE_NOT_FOUND")) {
      throw new Fault("Runtime.ImportModuleError", `${e.name}: ${e.message}`);
    }
    throw e;
  }
  let fn = mod;
  for (const key of handlerPath.split(".")) {
    fn = fn === undefined || fn === null ? undefined : fn[key];
  }
  if (fn === undefined) {
    throw new Fault("Runtime.HandlerNotFound", `${moduleName}.${handlerPath} is undefined or not exported`);
  }
  if (typeof fn !== "function") {
    throw new Fault("Runtime.HandlerNotFound", `${moduleName}.${handlerPath} is not a function`);
  }
  return fn;
}

// --- the context ----------------------------------------------------------------------------------------

function jsonHeader(headers, name) {
  const raw = headers[name];
  if (!raw) return undefined;
  try {
    return JSON.parse(raw);
  } catch (_) {
    return undefined;
  }
}

function makeContext(headers, answer) {
  const deadline = Number(headers["lambda-runtime-deadline-ms"] || 0);
  const identity = jsonHeader(headers, "lambda-runtime-cognito-identity");
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    invokedFunctionArn: headers["lambda-runtime-invoked-function-arn"],
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: headers["lambda-runtime-aws-request-id"],
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    identity: identity
      ? { cognitoIdentityId: identity.cognitoIdentityId, cognitoIdentityPoolId: identity.cognitoIdentityPoolId }
      : undefined,
    clientContext: jsonHeader(headers, "lambda-runtime-client-context"),
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    succeed: (result) => answer(null, result),
    fail: (err) => answer(err === undefined || err === null ? "handled" : err),
    done: (err, result) => answer(err, result),
  };
}

// --- the loop -------------------------------------------------------------------------------------------

async function answerWith(requestId, err, result) {
  if (err !== null && err !== undefined) {
    const error = errorObject(err);
    console.error("Invoke Error", "\t" + JSON.stringify(error));
    return postError(`/invocation/${requestId}/error`, error);
  }
  let body;
  try {
    body = JSON.stringify(result === undefined ? null : result);
  } catch (e) {
    const error = { errorType: "Runtime.MarshalError", errorMessage: `Unable to stringify response body: ${e.message}`, trace: [] };
    return postError(`/invocation/${requestId}/error`, error);
  }
  return request("POST", `/invocation/${requestId}/response`, body, { "Content-Type": "application/json" });
}

// What the event loop emptying means for the call in flight: set per call, cleared when it is answered.
let onEmptyEventLoop = null;
process.on("beforeExit", () => {
  if (onEmptyEventLoop) onEmptyEventLoop();
});

function isAsyncFunction(fn) {
  return fn.constructor && fn.constructor.name === "AsyncFunction";
}

function runHandler(handler, event, context, answered) {
  return new Promise((resolve) => {
    let done = false;
    const finish = (err, result) => {
      if (done) return;
      done = true;
      onEmptyEventLoop = null;
      resolve([err, result]);
    };
    answered.finish = finish;
    let returnedPromise = isAsyncFunction(handler);
    onEmptyEventLoop = () =>
      returnedPromise ? finish(new Fault("Runtime.NodeJsExit", NODEJS_EXIT_MESSAGE)) : finish(null, null);
    try {
      const maybe = handler(event, context, finish);
      if (maybe && typeof maybe.then === "function") {
        returnedPromise = true;
        maybe.then(
          (r) => finish(null, r),
          (e) => finish(e === undefined || e === null ? "handled" : e),
        );
      }
    } catch (e) {
      finish(e);
    }
  });
}

async function loop(handler) {
  for (;;) {
    const next = await request("GET", "/invocation/next");
    if (next.status !== 200) throw new Error(`runtime API /next answered ${next.status}`);
    const requestId = next.headers["lambda-runtime-aws-request-id"];
    currentRequestId = requestId;
    currentAnswered = false;
    if (next.headers["lambda-runtime-trace-id"]) process.env[TRACE] = next.headers["lambda-runtime-trace-id"];
    let event;
    try {
      event = next.body.length ? JSON.parse(next.body.toString("utf8")) : null;
    } catch (e) {
      await postError(`/invocation/${requestId}/error`, { errorType: "Runtime.UnmarshalError", errorMessage: e.message, trace: [] });
      currentAnswered = true;
      continue;
    }
    const answered = {};
    const context = makeContext(next.headers, (err, result) => answered.finish && answered.finish(err, result));
    const [err, result] = await runHandler(handler, event, context, answered);
    await answerWith(requestId, err, result);
    currentAnswered = true;
  }
}

async function fatal(err) {
  const error = errorObject(err);
  console.error("Uncaught Exception", "\t" + JSON.stringify(error));
  try {
    if (!currentAnswered) await postError(`/invocation/${currentRequestId}/error`, error);
  } finally {
    process.exit(129);
  }
}

async function main() {
  wrapEnvironment(); // before the handler's module runs: what it keeps of process.env is the wrapper
  patchConsole();
  let handler;
  try {
    handler = await loadHandler(process.env.LAMBDA_TASK_ROOT || process.cwd(), process.env._HANDLER);
  } catch (e) {
    const error = errorObject(e);
    console.error(`${error.errorType}: ${error.errorMessage}`);
    try {
      await postError("/init/error", error);
    } finally {
      process.exit(1);
    }
  }
  process.on("uncaughtException", fatal);
  process.on("unhandledRejection", (reason) => fatal(reason instanceof Error ? reason : new Error(String(reason))));
  await loop(handler);
}

if (require.main === module) {
  main().catch((e) => {
    process.stderr.write(`runtime failure: ${e && e.stack ? e.stack : e}\n`);
    process.exit(1);
  });
} else {
  module.exports = { wrapEnvironment }; // for tests/unit/test_node_trace_env.py
}
