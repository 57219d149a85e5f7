'use strict';
// Transactional produce throughput with the official Node client (used by
// scripts/bench-transactions.sh, not a test): CONCURRENCY workers each send
// a half message and end it (COMMIT, or ROLLBACK for ROLLBACK_PERCENT of
// them) until COUNT transactions are done. Prints one JSON line: count,
// seconds, transactions per second, p50/p99 of send+end latency (ms).
//
// Usage: node bench_transactions.js ENDPOINT TOPIC COUNT CONCURRENCY [ROLLBACK_PERCENT]

const { fail, installGuards, loadClient, makeLogger, describe, withTimeout } =
  require('./common.js');

const [ endpoints, topic, countText, concurrencyText, rollbackText ] = process.argv.slice(2);
const count = Number(countText);
const concurrency = Number(concurrencyText);
const rollbackPercent = Number(rollbackText || 0);
if (!endpoints || !topic || !(count > 0) || !(concurrency > 0)) {
  fail('usage: node bench_transactions.js ENDPOINT TOPIC COUNT CONCURRENCY [ROLLBACK_PERCENT]');
}
const hardTimer = installGuards(600000);
const { Producer } = loadClient();

async function main() {
  // Every transaction is ended here; a check-back (none expected) commits.
  const checker = { async check() { return 1; } };
  const producer = new Producer({ endpoints, namespace: '', topics: [ topic ], checker,
    logger: makeLogger('producer') });
  await withTimeout(producer.startup(), 20000, 'producer startup');
  const body = Buffer.alloc(256, 'x');
  // Warm-up: routes and connections.
  for (let i = 0; i < 10; i++) {
    const tx = producer.beginTransaction();
    await producer.send({ topic, body }, tx);
    await tx.commit();
  }
  const latencies = [];
  let next = 0;
  const start = process.hrtime.bigint();
  async function worker() {
    while (next < count) {
      const i = next++;
      const t0 = process.hrtime.bigint();
      const tx = producer.beginTransaction();
      await producer.send({ topic, body }, tx);
      if ((i % 100) < rollbackPercent) await tx.rollback(); else await tx.commit();
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  latencies.sort((a, b) => a - b);
  const pct = p => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))];
  console.log(JSON.stringify({ transactions: count, concurrency, rollback_percent: rollbackPercent,
    seconds: Number(seconds.toFixed(3)), per_second: Math.round(count / seconds),
    p50_ms: Number(pct(0.5).toFixed(2)), p99_ms: Number(pct(0.99).toFixed(2)) }));
  await withTimeout(producer.shutdown(), 15000, 'shutdown');
  clearTimeout(hardTimer);
  process.exit(0);
}

main().catch(e => fail(describe(e)));
