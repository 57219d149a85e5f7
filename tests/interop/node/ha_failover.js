'use strict';
// Keeps the official rocketmq-client-nodejs@1.0.8 producer sending through a
// master/slave failover (run by hand against `make run-ha`, see README.md):
// one send every 50 ms for DURATION_S seconds, one line per second with the
// sends that succeeded and failed. Kill the master meanwhile; the client
// writes only to route broker id 0, which the NameServer moves to the
// promoted slave.
//
// Usage: run.sh ha_failover.js ENDPOINT TOPIC DURATION_S
// stdout: "t=<s> ok=<n> failed=<n>" per second, then
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
  const producer = new Producer({ endpoints, namespace: '', topics: [ topic ],
    logger: makeLogger('producer') });
  await withTimeout(producer.startup(), 20000, 'producer startup');
  const start = Date.now();
  const perSecond = [];  // [ok, failed] by second
  let firstFailure = null;
  let lastFailure = null;
  while (Date.now() - start < durationS * 1000) {
    const second = Math.floor((Date.now() - start) / 1000);
    while (perSecond.length <= second) perSecond.push([ 0, 0 ]);
    try {
      await withTimeout(producer.send({ topic, body: Buffer.from(`ha-${Date.now()}`) }), 5000,
        'send');
      perSecond[second][0]++;
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
  await withTimeout(producer.shutdown(), 15000, 'shutdown');
  console.log('done');
  process.exit(0);
}

main().catch((e) => fail(describe(e)));
