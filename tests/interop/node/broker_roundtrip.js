'use strict';
// Produces and consumes through an Apogee broker with the unmodified
// official rocketmq-client-nodejs@1.0.8: a Producer sends COUNT messages, a
// SimpleConsumer receives and acks every one of them.
//
// Usage: node broker_roundtrip.js ENDPOINT TOPIC GROUP COUNT [tls]
//   ENDPOINT is a broker or a NameServer (host:port); "tls" sets the
//   clients' sslEnabled (grpc-js trusts a private CA named by
//   GRPC_DEFAULT_SSL_ROOTS_FILE_PATH).
// stdout on success: "sent N", "received N", "acked N", "shutdown ok".
// Any failure: "FAIL: <reason>" on stderr, exit 1. Hard limit: 90 s.

const { fail, installGuards, loadClient, makeLogger, describe, withTimeout } =
  require('./common.js');

const hardTimer = installGuards(90000);
const [ endpoints, topic, group, countText, mode ] = process.argv.slice(2);
const sslEnabled = mode === 'tls';
const count = Number(countText);
if (!endpoints || !topic || !group || !(count > 0)) {
  fail('usage: node broker_roundtrip.js ENDPOINT TOPIC GROUP COUNT [tls]');
}
const { Producer, SimpleConsumer } = loadClient();

async function main() {
  const producer = new Producer({ endpoints, sslEnabled, namespace: '', topics: [ topic ],
    logger: makeLogger('producer') });
  await withTimeout(producer.startup(), 20000, 'producer startup');

  const sent = new Map();  // messageId -> body
  for (let i = 0; i < count; i++) {
    const body = Buffer.from(`node-body-${i}`);
    const receipt = await producer.send({
      topic, tag: 'TagA', keys: [ `node-key-${i}` ],
      properties: new Map([[ 'index', String(i) ]]), body,
    });
    if (!receipt || !receipt.messageId) fail(`send ${i} returned no receipt`);
    sent.set(receipt.messageId, body.toString());
  }
  console.log(`sent ${sent.size}`);

  const consumer = new SimpleConsumer({ endpoints, sslEnabled, namespace: '', consumerGroup: group,
    subscriptions: new Map([[ topic, '*' ]]), awaitDuration: 3000,
    logger: makeLogger('consumer') });
  await withTimeout(consumer.startup(), 20000, 'consumer startup');

  const received = new Set();
  let acked = 0;
  const deadline = Date.now() + 60000;
  while (received.size < sent.size && Date.now() < deadline) {
    const messages = await consumer.receive(16, 20000);
    for (const m of messages) {
      const want = sent.get(m.messageId);
      if (want === undefined) fail(`received unknown message ${m.messageId}`);
      if (m.body.toString() !== want) fail(`body of ${m.messageId} is "${m.body}", want "${want}"`);
      if (m.tag !== 'TagA') fail(`tag of ${m.messageId} is "${m.tag}"`);
      if (m.topic !== topic) fail(`topic of ${m.messageId} is "${m.topic}"`);
      if (m.corrupted) fail(`message ${m.messageId} failed its body digest check`);
      if (m.properties.get('index') === undefined) fail(`message ${m.messageId} lost its property`);
      received.add(m.messageId);
      await consumer.ack(m);
      acked++;
    }
  }
  console.log(`received ${received.size}`);
  console.log(`acked ${acked}`);
  if (received.size !== sent.size) fail(`received ${received.size} of ${sent.size}`);

  await withTimeout(Promise.all([ producer.shutdown(), consumer.shutdown() ]), 15000, 'shutdown');
  console.log('shutdown ok');
  clearTimeout(hardTimer);
  process.exit(0);
}

main().catch(e => fail(describe(e)));
