'use strict';
// FIFO through an Apogee broker with the unmodified official
// rocketmq-client-nodejs@1.0.8: a Producer sends GROUPS x PER_GROUP messages
// with a messageGroup each (groups interleaved); a SimpleConsumer of a FIFO
// consumer group receives each group's messages in send order and acks them;
// index 2 of each group is nacked once and must come back before index 3.
//
// Usage: node fifo_order.js ENDPOINT TOPIC GROUP GROUPS PER_GROUP
//   TOPIC must be a FIFO topic and GROUP a FIFO consumer group.
// stdout on success: "sent N", "received N in order", "shutdown ok".
// Any failure: "FAIL: <reason>" on stderr, exit 1. Hard limit: 90 s.

const { fail, installGuards, loadClient, makeLogger, describe, withTimeout } =
  require('./common.js');

const hardTimer = installGuards(90000);
const [ endpoints, topic, group, groupsText, perGroupText ] = process.argv.slice(2);
const groups = Number(groupsText);
const perGroup = Number(perGroupText);
if (!endpoints || !topic || !group || !(groups > 0) || !(perGroup > 0)) {
  fail('usage: node fifo_order.js ENDPOINT TOPIC GROUP GROUPS PER_GROUP');
}
const { Producer, SimpleConsumer } = loadClient();

async function main() {
  const producer = new Producer({ endpoints, namespace: '', topics: [ topic ],
    logger: makeLogger('producer') });
  await withTimeout(producer.startup(), 20000, 'producer startup');
  let sent = 0;
  for (let i = 0; i < perGroup; i++) {
    for (let g = 0; g < groups; g++) {
      const receipt = await producer.send({
        topic, tag: 'Fifo', messageGroup: `node-order-${g}`, body: Buffer.from(`${g}:${i}`),
      });
      if (!receipt || !receipt.messageId) fail(`send ${g}:${i} returned no receipt`);
      sent++;
    }
  }
  console.log(`sent ${sent}`);

  const consumer = new SimpleConsumer({ endpoints, namespace: '', consumerGroup: group,
    subscriptions: new Map([[ topic, '*' ]]), awaitDuration: 2000,
    logger: makeLogger('consumer') });
  await withTimeout(consumer.startup(), 20000, 'consumer startup');

  const next = new Array(groups).fill(0);
  const nacked = new Set();  // groups whose index 2 was nacked once
  let received = 0;
  const deadline = Date.now() + 60000;
  while (received < sent && Date.now() < deadline) {
    const messages = await consumer.receive(16, 20000);
    for (const m of messages) {
      const [ g, i ] = m.body.toString().split(':').map(Number);
      if (m.messageGroup !== `node-order-${g}`) {
        fail(`message ${m.messageId} has messageGroup "${m.messageGroup}", want node-order-${g}`);
      }
      if (i !== next[g]) fail(`group ${g}: received index ${i}, expected ${next[g]}`);
      if (i === 2 && !nacked.has(g)) {
        // Visible again in 500 ms: index 3 must not come before it does.
        nacked.add(g);
        await consumer.changeInvisibleDuration(m, 500);
        continue;
      }
      next[g] = i + 1;
      await consumer.ack(m);
      received++;
    }
  }
  if (received !== sent) fail(`received ${received} of ${sent}`);
  console.log(`received ${received} in order`);

  await withTimeout(Promise.all([ producer.shutdown(), consumer.shutdown() ]), 15000, 'shutdown');
  console.log('shutdown ok');
  clearTimeout(hardTimer);
  process.exit(0);
}

main().catch(e => fail(describe(e)));
