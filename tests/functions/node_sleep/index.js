// Fixture: prints "pids: <its pid>", then sleeps event.seconds (default 3600) before answering.
exports.handler = async (event) => {
  console.log(`pids: ${process.pid}`);
  await new Promise((resolve) => setTimeout(resolve, ((event && event.seconds) || 3600) * 1000));
  return { slept: true };
};
