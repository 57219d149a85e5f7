'use strict';
// SQL92 filtering with the unmodified official rocketmq-client-nodejs@1.0.8:
// a Producer sends "m0".."m9" with property a = 0..9, a SimpleConsumer
// subscribed with `new FilterExpression('a > 5', FilterType.SQL)` must
// receive exactly m6..m9 and then nothing, and a SimpleConsumer with a
// malformed SQL expression must be refused with ILLEGAL_FILTER_EXPRESSION.
//
// Usage: node sql_filter.js ENDPOINT TOPIC GROUP   (ENDPOINT: broker or NameServer)
// stdout on success: "sent 10", "received m6,m7,m8,m9", "then nothing",
// "illegal code=<code> message=<message>", "shutdown ok".
// Any failure: "FAIL: <reason>" on stderr, exit 1. Hard limit: 60 s.

const { fail, installGuards, loadClient, makeLogger, rootCause, describe, withTimeout } =
  require('./common.js');

const hardTimer = installGuards(60000);
const [ endpoints, topic, group ] = process.argv.slice(2);
if (!endpoints || !topic || !group) fail('usage: node sql_filter.js ENDPOINT TOPIC GROUP');
const { Producer, SimpleConsumer, FilterExpression } = loadClient();
const { FilterType } = require('rocketmq-client-nodejs/proto/apache/rocketmq/v2/definition_pb');

function consumer(filter, consumerGroup) {
  return new SimpleConsumer({ endpoints, namespace: '', consumerGroup,
    subscriptions: new Map([[ topic, filter ]]), awaitDuration: 1000,
    logger: makeLogger(consumerGroup) });
}

async function main() {
  const producer = new Producer({ endpoints, namespace: '', topics: [ topic ],
    logger: makeLogger('producer') });
  await withTimeout(producer.startup(), 20000, 'producer startup');
  for (let i = 0; i < 10; i++) {
    await producer.send({ topic, tag: 'TagA', properties: new Map([[ 'a', String(i) ]]),
      body: Buffer.from(`m${i}`) });
  }
  console.log('sent 10');

  const sql = consumer(new FilterExpression('a > 5', FilterType.SQL), group);
  await withTimeout(sql.startup(), 20000, 'consumer startup');
  const received = [];
  const deadline = Date.now() + 20000;
  while (received.length < 4 && Date.now() < deadline) {
    for (const m of await sql.receive(16, 20000)) {
      received.push(m.body.toString());
      await sql.ack(m);
    }
  }
  received.sort();
  console.log(`received ${received.join(',')}`);
  if (received.join(',') !== 'm6,m7,m8,m9') fail(`received ${received}, want m6,m7,m8,m9`);
  const more = await sql.receive(16, 20000);
  if (more.length !== 0) fail(`received ${more.length} more: ${more.map(m => m.body.toString())}`);
  console.log('then nothing');

  const bad = consumer(new FilterExpression('a >', FilterType.SQL), `${group}-bad`);
  await withTimeout(bad.startup(), 20000, 'bad consumer startup');
  try {
    await bad.receive(16, 20000);
    fail('receive with a malformed SQL expression succeeded');
  } catch (e) {
    const root = rootCause(e);
    console.log(`illegal code=${root.code} message=${root.message}`);
  }

  await withTimeout(Promise.all([ producer.shutdown(), sql.shutdown(), bad.shutdown() ]), 15000,
    'shutdown');
  console.log('shutdown ok');
  clearTimeout(hardTimer);
  process.exit(0);
}

main().catch(e => fail(describe(e)));
