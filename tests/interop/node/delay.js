'use strict';
// Delayed messages with the unmodified official rocketmq-client-nodejs: a
// Producer sends COUNT messages with `delay` DELAY_MS (the client turns it
// into delivery_timestamp) and one with a past deliveryTimestamp; a
// SimpleConsumer receives every one of them, none before its delivery
// time (messages with body "probe" are acked and skipped). A delayed message with a message group is refused (by this client
// itself, before sending: it treats the two as exclusive, as the broker does).
//
// Usage: node delay.js ENDPOINT TOPIC GROUP COUNT DELAY_MS
// stdout on success: "sent N", "received N", "never early", "max lateness MS",
// "fifo refused", "shutdown ok". Any failure: "FAIL: <reason>", exit 1.

const { fail, installGuards, loadClient, makeLogger, describe, withTimeout } =
  require('./common.js');

const hardTimer = installGuards(60000);
const [ endpoints, topic, group, countText, delayText ] = process.argv.slice(2);
const count = Number(countText);
const delayMs = Number(delayText);
if (!endpoints || !topic || !group || !(count > 0) || !(delayMs > 0)) {
  fail('usage: node delay.js ENDPOINT TOPIC GROUP COUNT DELAY_MS');
}
const { Producer, SimpleConsumer } = loadClient();

async function main() {
  const producer = new Producer({ endpoints, namespace: '', topics: [ topic ],
    logger: makeLogger('producer') });
  await withTimeout(producer.startup(), 20000, 'producer startup');

  const due = new Map();  // messageId -> delivery time (ms)
  for (let i = 0; i < count; i++) {
    const sentAt = Date.now();
    const receipt = await producer.send({ topic, body: Buffer.from(`delayed-${i}`), delay: delayMs });
    due.set(receipt.messageId, sentAt + delayMs);
  }
  const past = Date.now() - 5000;
  const receipt = await producer.send({ topic, body: Buffer.from('past'),
    deliveryTimestamp: new Date(past) });
  due.set(receipt.messageId, past);
  console.log(`sent ${due.size}`);

  try {
    await producer.send({ topic, body: Buffer.from('fifo'), delay: delayMs, messageGroup: 'g' });
    fail('a delayed message with a message group was accepted');
  } catch (e) {
    if (!/mutually exclusive/.test(e.message)) fail(`delayed FIFO failed oddly: ${describe(e)}`);
    console.log('fifo refused');
  }

  const consumer = new SimpleConsumer({ endpoints, namespace: '', consumerGroup: group,
    subscriptions: new Map([[ topic, '*' ]]), awaitDuration: 5000,
    logger: makeLogger('consumer') });
  await withTimeout(consumer.startup(), 20000, 'consumer startup');

  const received = new Set();
  let maxLateness = 0;
  const deadline = Date.now() + 30000;
  while (received.size < due.size && Date.now() < deadline) {
    const messages = await consumer.receive(16, 20000);
    const now = Date.now();
    for (const m of messages) {
      const at = due.get(m.messageId);
      if (at === undefined && m.body.toString() === 'probe') {  // the test's route probe
        await consumer.ack(m);
        continue;
      }
      if (at === undefined) fail(`received unknown message ${m.messageId}`);
      if (received.has(m.messageId)) fail(`message ${m.messageId} delivered twice`);
      // The client stamped the delivery time from its own clock: 50 ms slack.
      if (now + 50 < at) fail(`message ${m.messageId} arrived ${at - now} ms early`);
      const stamped = m.deliveryTimestamp ? m.deliveryTimestamp.getTime() : undefined;
      if (stamped === undefined) fail(`message ${m.messageId} lost its delivery timestamp`);
      maxLateness = Math.max(maxLateness, now - Math.max(at, stamped));
      received.add(m.messageId);
      await consumer.ack(m);
    }
  }
  console.log(`received ${received.size}`);
  if (received.size !== due.size) fail(`received ${received.size} of ${due.size}`);
  console.log('never early');
  console.log(`max lateness ${maxLateness}`);

  await withTimeout(Promise.all([ producer.shutdown(), consumer.shutdown() ]), 15000, 'shutdown');
  console.log('shutdown ok');
  clearTimeout(hardTimer);
  process.exit(0);
}

main().catch(e => fail(describe(e)));
