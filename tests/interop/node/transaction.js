'use strict';
// Transactional messages with the unmodified official rocketmq-client-nodejs:
// a transactional Producer commits one half message, rolls one back and
// leaves a third orphaned; the broker's check-back asks this producer's
// checker, which answers COMMIT. A SimpleConsumer receives the committed and
// the orphan (each once), never the rolled-back one. Run the broker with a
// short --transaction_check_delay / --transaction_check_interval.
//
// Usage: node transaction.js ENDPOINT TOPIC GROUP
// stdout on success: "committed", "rolled back", "orphan sent", "checked N",
// "received 2", "rollback invisible", "shutdown ok". Any failure:
// "FAIL: <reason>", exit 1.

const { fail, installGuards, loadClient, makeLogger, describe, withTimeout } =
  require('./common.js');

const hardTimer = installGuards(60000);
const [ endpoints, topic, group ] = process.argv.slice(2);
if (!endpoints || !topic || !group) fail('usage: node transaction.js ENDPOINT TOPIC GROUP');
const { Producer, SimpleConsumer } = loadClient();

// apache.rocketmq.v2.TransactionResolution (the client does not re-export it).
const COMMIT = 1;
const UNKNOWN = 0;

async function main() {
  const checked = [];
  const checker = {
    async check(messageView) {
      checked.push(messageView.messageId);
      return messageView.body.toString() === 'tx-orphan' ? COMMIT : UNKNOWN;
    },
  };
  const producer = new Producer({ endpoints, namespace: '', topics: [ topic ], checker,
    logger: makeLogger('producer') });
  await withTimeout(producer.startup(), 20000, 'producer startup');

  const ids = {};
  for (const body of [ 'tx-commit', 'tx-rollback', 'tx-orphan' ]) {
    const tx = producer.beginTransaction();
    const receipt = await producer.send({ topic, body: Buffer.from(body) }, tx);
    if (!receipt.transactionId) fail(`send of ${body} carried no transaction id`);
    ids[body] = receipt.messageId;
    if (body === 'tx-commit') {
      await tx.commit();
      console.log('committed');
    } else if (body === 'tx-rollback') {
      await tx.rollback();
      console.log('rolled back');
    } else {
      console.log('orphan sent');  // neither: the broker checks back
    }
  }

  const consumer = new SimpleConsumer({ endpoints, namespace: '', consumerGroup: group,
    subscriptions: new Map([[ topic, '*' ]]), awaitDuration: 2000,
    logger: makeLogger('consumer') });
  await withTimeout(consumer.startup(), 20000, 'consumer startup');

  const received = new Map();  // body -> count
  const deadline = Date.now() + 30000;
  let lingerUntil = Infinity;
  while (Date.now() < Math.min(deadline, lingerUntil)) {
    const messages = await consumer.receive(16, 20000);
    for (const m of messages) {
      const body = m.body.toString();
      received.set(body, (received.get(body) || 0) + 1);
      await consumer.ack(m);
    }
    if (received.has('tx-commit') && received.has('tx-orphan') && lingerUntil === Infinity) {
      lingerUntil = Date.now() + 1500;  // catch a second copy of either
    }
  }
  if (!checked.includes(ids['tx-orphan'])) fail('the orphan was never checked back');
  console.log(`checked ${checked.length}`);
  for (const body of [ 'tx-commit', 'tx-orphan' ]) {
    if (received.get(body) !== 1) fail(`${body} received ${received.get(body) || 0} times`);
  }
  console.log(`received ${received.size}`);
  if (received.has('tx-rollback')) fail('a rolled-back message was delivered');
  console.log('rollback invisible');

  await withTimeout(Promise.all([ producer.shutdown(), consumer.shutdown() ]), 15000, 'shutdown');
  console.log('shutdown ok');
  clearTimeout(hardTimer);
  process.exit(0);
}

main().catch(e => fail(describe(e)));
