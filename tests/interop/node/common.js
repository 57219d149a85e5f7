'use strict';
// Helpers shared by the interop scripts: failing loudly, a quiet logger for
// the client, timeouts, and error descriptions that reach the root cause.

const util = require('node:util');

function fail(reason) {
  process.stderr.write(`FAIL: ${reason}\n`);
  process.exit(1);
}

// Ends the process with FAIL after `ms`, and on any unhandled error.
function installGuards(ms) {
  const timer = setTimeout(() => fail(`hard timeout: script did not finish within ${ms} ms`), ms);
  process.on('unhandledRejection', e => fail(`unhandled rejection: ${describe(e)}`));
  process.on('uncaughtException', e => fail(`uncaught exception: ${describe(e)}`));
  return timer;
}

function loadClient() {
  try {
    return require('rocketmq-client-nodejs');
  } catch (e) {
    return fail(`cannot load rocketmq-client-nodejs (run via run.sh): ${e.message}`);
  }
}

// Quiet logger: info/debug dropped, warn/error to stderr. Passing a logger
// also keeps the client from opening its default file logger under ~/logs.
function makeLogger(label) {
  const emit = (level, args) => {
    const text = args.map(a => (a instanceof Error ? a.message : a));
    process.stderr.write(`[${label} ${level}] ${util.format(...text)}\n`);
  };
  return {
    info() {},
    debug() {},
    warn(...args) { emit('warn', args); },
    error(...args) { emit('error', args); },
    close() {},
  };
}

// Startup errors are wrapped twice by the client ("Startup ... failed" ->
// "Failed to fetch topic routes ..." -> ClientException with a numeric code).
// Returns the innermost error that carries a code, or the innermost cause.
function rootCause(e) {
  let cur = e;
  let withCode;
  const seen = new Set();
  while (cur && !seen.has(cur)) {
    seen.add(cur);
    if (cur.code !== undefined && withCode === undefined) withCode = cur;
    if (!cur.cause) break;
    cur = cur.cause;
  }
  return withCode || cur || e;
}

function describe(e) {
  if (e === undefined || e === null) return String(e);
  if (!(e instanceof Error)) return String(e);
  const root = rootCause(e);
  const rootText = root !== e ? ` [root cause: ${root.name}: ${root.message}]` : '';
  return `${e.name}: ${e.message}${rootText}`;
}

// Runs `promise` with a deadline; rejects with a descriptive Error on timeout.
function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([ promise, timeout ]).finally(() => clearTimeout(timer));
}

module.exports = { fail, installGuards, loadClient, makeLogger, rootCause, describe, withTimeout };
