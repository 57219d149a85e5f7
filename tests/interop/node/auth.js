'use strict';
// Auth (ACL 2.0) with the unmodified official rocketmq-client-nodejs@1.0.8
// and its `sessionCredentials` against a broker started with --auth.
//
// Usage: node auth.js ENDPOINT TOPIC GROUP ACCESS_KEY ACCESS_SECRET EXPECT
//   EXPECT ok:     a Producer sends one message and a SimpleConsumer
//                  receives and acks it; stdout "sent 1", "acked 1".
//   EXPECT 40100 / 40300: starting the producer or sending must fail with
//                  that code (UNAUTHORIZED / FORBIDDEN); stdout
//                  "refused <code> <message>".
// Any other outcome: "FAIL: <reason>" on stderr, exit 1. Hard limit: 60 s.

const { fail, installGuards, loadClient, makeLogger, rootCause, describe, withTimeout } =
  require('./common.js');

const hardTimer = installGuards(60000);
const [ endpoints, topic, group, accessKey, accessSecret, expect ] = process.argv.slice(2);
if (!endpoints || !topic || !group || !accessKey || !expect) {
  fail('usage: node auth.js ENDPOINT TOPIC GROUP ACCESS_KEY ACCESS_SECRET EXPECT');
}
const { Producer, SimpleConsumer } = loadClient();
const sessionCredentials = { accessKey, accessSecret };

async function roundTrip() {
  const producer = new Producer({ endpoints, namespace: '', topics: [ topic ], sessionCredentials,
    logger: makeLogger('producer') });
  await withTimeout(producer.startup(), 20000, 'producer startup');
  const receipt = await producer.send({ topic, tag: 'TagA', body: Buffer.from('signed') });
  if (!receipt || !receipt.messageId) fail('send returned no receipt');
  console.log('sent 1');
  const consumer = new SimpleConsumer({ endpoints, namespace: '', consumerGroup: group,
    subscriptions: new Map([[ topic, '*' ]]), awaitDuration: 3000, sessionCredentials,
    logger: makeLogger('consumer') });
  await withTimeout(consumer.startup(), 20000, 'consumer startup');
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    const messages = await consumer.receive(16, 20000);
    const mine = messages.find(m => m.messageId === receipt.messageId);
    for (const m of messages) await consumer.ack(m);
    if (mine) {
      console.log('acked 1');
      await consumer.shutdown();
      await producer.shutdown();
      return;
    }
  }
  fail(`message ${receipt.messageId} was not received within 30 s`);
}

async function refused() {
  const producer = new Producer({ endpoints, namespace: '', topics: [ topic ], sessionCredentials,
    logger: makeLogger('producer') });
  try {
    await withTimeout(producer.startup(), 20000, 'producer startup');
    await producer.send({ topic, tag: 'TagA', body: Buffer.from('denied') });
  } catch (e) {
    const root = rootCause(e);
    if (String(root.code) !== expect) fail(`wanted code ${expect}, got ${describe(e)}`);
    console.log(`refused ${root.code} ${root.message}`);
    return;
  }
  fail(`send succeeded, wanted code ${expect}`);
}

(expect === 'ok' ? roundTrip() : refused())
  .then(() => { clearTimeout(hardTimer); process.exit(0); })
  .catch(e => fail(describe(e)));
