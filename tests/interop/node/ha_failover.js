'use strict';
// Keeps the official rocketmq-client-nodejs@1.0.8 producer sending through a
// master/slave failover (ha_replication_integration_test, or by hand against
// `make run-ha`, see README.md):
// one send every 50 ms for DURATION_S seconds, one line per second with the
// sends that succeeded and failed. Kill the master meanwhile. The client
// caches its publishing route forever; it isolates the dead master's
// endpoint and writes through the standby queue QueryRoute lists for the
// slave, which relays to the writer and is the writer once promoted.
//
// Usage: run.sh ha_failover.js ENDPOINT TOPIC DURATION_S
// stdout: "first send ok", then "t=<s> ok=<n> failed=<n>" per second, then
//   "recovered after <s>s of failures" (or "no failures") and "done".
// Exit 1 ("FAIL: ...") when the last 5 s still had a failed send.

const { fail, installGuards, loadClient, makeLogger, describe, withTimeout } =
  require('./common.js');

const [ endpoints, topic, durationText ] = process.argv.slice(2);
const durationS = Number(durationText);
if (!endpoints || !topic || !(durationS > 5)) {
  fail('usage: node ha_failover.js ENDPOINT TOPIC DURATION_S (> 5)');
}
installGuards((durationS + 30) * 1000);
const { Producer } = loadClient();

async function main() {
  // A request timeout beyond the failover time (about 4 s with the default
  // 3 s lease): the standby holds a send until the new writer takes it, and
  // this client isolates an endpoint for good after one failed send.
  const producer = new Producer({ endpoints, namespace: '', topics: [ topic ],
    requestTimeout: 10000, logger: makeLogger('producer') });
  await withTimeout(producer.startup(), 20000, 'producer startup');
  const start = Date.now();
  const perSecond = [];  // [ok, failed] by second
  let firstOk = false;
  let firstFailure = null;
  let lastFailure = null;
  while (Date.now() - start < durationS * 1000) {
    const second = Math.floor((Date.now() - start) / 1000);
    while (perSecond.length <= second) perSecond.push([ 0, 0 ]);
    try {
      await withTimeout(producer.send({ topic, body: Buffer.from(`ha-${Date.now()}`) }), 15000,
        'send');
      perSecond[second][0]++;
      if (!firstOk) {
        firstOk = true;
        console.log('first send ok');  // a test kills the master after this line
      }
    } catch (e) {
      perSecond[second][1]++;
      lastFailure = (Date.now() - start) / 1000;
      if (firstFailure === null) {
        firstFailure = lastFailure;
        process.stderr.write(`first failure at ${firstFailure}s: ${describe(e)}\n`);
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  perSecond.forEach(([ ok, failed ], s) => console.log(`t=${s} ok=${ok} failed=${failed}`));
  if (firstFailure === null) {
    console.log('no failures');
  } else {
    console.log(`recovered after ${(lastFailure - firstFailure).toFixed(1)}s of failures`);
    if (durationS - lastFailure < 5) fail(`sends still failing at ${lastFailure}s`);
  }
  // Shutdown also says goodbye to the dead master's endpoint: that may fail.
  await withTimeout(producer.shutdown(), 15000, 'shutdown').catch(
    (e) => process.stderr.write(`shutdown: ${describe(e)}\n`));
  console.log('done');
  process.exit(0);
}

main().catch((e) => fail(describe(e)));
