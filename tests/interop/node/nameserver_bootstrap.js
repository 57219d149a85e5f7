'use strict';
// Bootstraps the official rocketmq-client-nodejs@1.0.8 client against an
// Apogee NameServer whose registered broker's client endpoint is the
// NameServer itself (it answers QueryRoute, Telemetry Settings, Heartbeat and
// NotifyClientTermination).
//
// Usage: node nameserver_bootstrap.js ENDPOINT TOPIC MISSING_TOPIC
// (normally via run.sh, which puts the package on NODE_PATH)
//
// stdout on success:
//   producer started
//   consumer started
//   route queues=<n>
//   missing topic rejected: <error name/code>
//   shutdown ok
// Any failure: "FAIL: <reason>" on stderr, exit 1. Hard limit: 60 s.

const path = require('node:path');
const { fail, installGuards, loadClient, makeLogger, rootCause, describe, withTimeout } =
  require('./common.js');

const HARD_LIMIT_MS = 60000;
const STARTUP_TIMEOUT_MS = 20000;
const SHUTDOWN_TIMEOUT_MS = 15000;

const hardTimer = installGuards(HARD_LIMIT_MS);

const [ endpoints, topic, missingTopic ] = process.argv.slice(2);
if (!endpoints || !topic || !missingTopic) {
  fail('usage: node nameserver_bootstrap.js ENDPOINT TOPIC MISSING_TOPIC');
}

const rmq = loadClient();
const { Producer, SimpleConsumer } = rmq;





// Number of queues the client itself cached for `t`, or undefined when the
// internal cache is not reachable.
function cachedQueueCount(client, t) {
  const cache = client.topicRouteCache;
  if (!(cache instanceof Map)) return undefined;
  const route = cache.get(t);
  if (!route || !Array.isArray(route.messageQueues)) return undefined;
  return route.messageQueues.length;
}

// Fallback: ask the server directly with the package's own generated stubs.
function queryRouteQueueCount(client, t) {
  const pkgDir = path.dirname(require.resolve('rocketmq-client-nodejs/package.json'));
  const grpc = require(require.resolve('@grpc/grpc-js', { paths: [ pkgDir ] }));
  const svc = require(path.join(pkgDir, 'proto/apache/rocketmq/v2/service_grpc_pb'));
  const pb = require(path.join(pkgDir, 'proto/apache/rocketmq/v2/service_pb'));
  const def = require(path.join(pkgDir, 'proto/apache/rocketmq/v2/definition_pb'));

  const stub = new svc.MessagingServiceClient(endpoints, grpc.credentials.createInsecure());
  const req = new pb.QueryRouteRequest();
  const resource = new def.Resource();
  resource.setName(t);
  resource.setResourceNamespace('');
  req.setTopic(resource);
  const [ host, port ] = [ endpoints.slice(0, endpoints.lastIndexOf(':')),
    Number(endpoints.slice(endpoints.lastIndexOf(':') + 1)) ];
  const addr = new def.Address();
  addr.setHost(host);
  addr.setPort(port);
  const eps = new def.Endpoints();
  eps.setScheme(/^\d+\.\d+\.\d+\.\d+$/.test(host) ? def.AddressScheme.IPV4 : def.AddressScheme.DOMAIN_NAME);
  eps.addAddresses(addr);
  req.setEndpoints(eps);
  const md = new grpc.Metadata();
  md.set('x-mq-client-id', client.clientId || 'apogee-interop-probe');
  md.set('x-mq-protocol', 'v2');
  md.set('x-mq-language', 'HTTP');
  return new Promise((resolve, reject) => {
    stub.queryRoute(req, md, { deadline: Date.now() + 5000 }, (err, res) => {
      stub.close();
      if (err) return reject(err);
      const status = res.getStatus();
      if (!status || status.getCode() !== def.Code.OK) {
        return reject(new Error(`QueryRoute status ${status ? status.getCode() : '<none>'}: ${status ? status.getMessage() : ''}`));
      }
      resolve(res.getMessageQueuesList().length);
    });
  });
}

async function main() {
  // a. Producer with topics: startup resolves only after the Settings reply.
  const producer = new Producer({
    endpoints,
    namespace: '',
    topics: [ topic ],
    logger: makeLogger('producer'),
  });
  try {
    await withTimeout(producer.startup(), STARTUP_TIMEOUT_MS, 'producer startup');
  } catch (e) {
    fail(`producer startup: ${describe(e)}`);
  }
  console.log('producer started');

  // b. SimpleConsumer.
  const consumer = new SimpleConsumer({
    endpoints,
    namespace: '',
    consumerGroup: 'interop-group',
    subscriptions: new Map([[ topic, '*' ]]),
    awaitDuration: 5000,
    logger: makeLogger('consumer'),
  });
  try {
    await withTimeout(consumer.startup(), STARTUP_TIMEOUT_MS, 'consumer startup');
  } catch (e) {
    fail(`consumer startup: ${describe(e)}`);
  }
  console.log('consumer started');

  // c. Route as the client sees it.
  let queues = cachedQueueCount(producer, topic);
  if (queues === undefined) {
    try {
      queues = await queryRouteQueueCount(producer, topic);
    } catch (e) {
      fail(`QueryRoute ${topic}: ${describe(e)}`);
    }
  }
  console.log(`route queues=${queues}`);

  // d. Producer for a missing topic: startup must reject (TOPIC_NOT_FOUND,
  // after the client's ~3 s of retries).
  const missing = new Producer({
    endpoints,
    namespace: '',
    topics: [ missingTopic ],
    logger: makeLogger('missing-producer'),
  });
  let rejected;
  try {
    await withTimeout(missing.startup(), STARTUP_TIMEOUT_MS, 'missing-topic producer startup');
  } catch (e) {
    if (/timed out after/.test(e.message) && !e.cause) {
      fail(`missing-topic producer startup neither resolved nor rejected: ${e.message}`);
    }
    rejected = e;
  }
  if (!rejected) {
    fail(`producer startup for missing topic ${missingTopic} resolved; expected rejection`);
  }
  const root = rootCause(rejected);
  const codePart = root.code !== undefined ? ` code=${root.code}` : '';
  console.log(`missing topic rejected: ${root.name || 'Error'}${codePart}`);
  // The failed producer never started timers or streams (no route); releasing
  // its channel is best effort and not part of the check.
  try {
    await withTimeout(missing.shutdown(), 5000, 'missing-topic producer shutdown');
  } catch (e) {
    process.stderr.write(`note: missing-topic producer shutdown: ${describe(e)}\n`);
  }

  // e. Shutdown calls NotifyClientTermination on every route endpoint and
  // throws if it fails.
  try {
    await withTimeout(producer.shutdown(), SHUTDOWN_TIMEOUT_MS, 'producer shutdown');
  } catch (e) {
    fail(`producer shutdown: ${describe(e)}`);
  }
  try {
    await withTimeout(consumer.shutdown(), SHUTDOWN_TIMEOUT_MS, 'consumer shutdown');
  } catch (e) {
    fail(`consumer shutdown: ${describe(e)}`);
  }
  console.log('shutdown ok');
}

main().then(() => {
  clearTimeout(hardTimer);
  // Flush stdout before exiting; the client may leave handles open.
  process.stdout.write('', () => process.exit(0));
}, e => fail(describe(e)));
