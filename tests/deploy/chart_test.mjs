// helm/apogee without a cluster: `helm template` for each values file in
// helm/apogee/ci/ (every object validated against the Kubernetes schemas,
// unknown fields rejected), and the rendered topology: StatefulSets per broker
// group, broker ids per ordinal, advertised DNS names, probes, volumes, the
// NameServer address list, metrics toggles. With APOGEE_BINARIES set, every
// flag the chart passes (config files and args) must be one the binaries
// define (their --help).
//   HELM=... NODE_PATH=... node chart_test.mjs CHART_DIR [RENDERED_MANIFESTS]
// RENDERED_MANIFESTS (deploy/k8s/apogee.yaml) is validated with the rest.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import { parseManifests, validateObjects, yaml } from './k8s_validate.mjs';

const chart = process.argv[2];
assert.ok(chart && fs.existsSync(path.join(chart, 'Chart.yaml')), `usage: chart_test.mjs CHART_DIR`);
const NS = 'mq';

function render(args = [], release = 'apogee') {
  const out = execFileSync(process.env.HELM, ['template', release, chart, '--namespace', NS, ...args],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return yaml.loadAll(out).filter((o) => o != null);
}
function renderError(args) {
  try {
    render(args);
  } catch (e) {
    return String(e.stderr);
  }
  return '';
}
const find = (objs, kind, name) => objs.find((o) => o.kind === kind && o.metadata.name === name);
const ofKind = (objs, kind) => objs.filter((o) => o.kind === kind);
const container = (sts, name) => sts.spec.template.spec.containers.find((c) => c.name === name);
// `flag = value` lines of a config file, as a map.
function conf(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    const m = /^\s*([a-z_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (m) out.set(m[1], m[2]);
  }
  return out;
}
// What the kubelet runs: $(VAR) in args expanded from the container's env.
function expand(args, env) {
  return args.map((a) => a.replace(/\$\(([A-Z_]+)\)/g, (_, v) => {
    assert.ok(v in env, `arg ${a} uses $(${v}), which the test does not model`);
    return env[v];
  }));
}
const flag = (args, name) => {
  const hit = args.filter((a) => a.startsWith(`--${name}=`));
  assert.equal(hit.length, 1, `--${name} given ${hit.length} times in ${args.join(' ')}`);
  return hit[0].slice(name.length + 3);
};

// The flags each binary defines, from its --help. APOGEE_BINARIES:
// "name=path,name=path" (ctest passes the built binaries).
const binaries = new Map((process.env.APOGEE_BINARIES ?? '').split(',').filter(Boolean)
  .map((kv) => kv.split('=')));
function binaryFlags(binary) {
  assert.ok(binaries.has(binary), `APOGEE_BINARIES does not name ${binary}`);
  // absl's --help exits 1 after printing.
  const out = spawnSync(binaries.get(binary), ['--help'], { encoding: 'utf8' }).stdout;
  return new Set([...out.matchAll(/^\s+--([a-z_0-9]+) \(/gm)].map((m) => m[1]));
}

// One tsc run for everything (it dominates the time): the objects of every
// values file in ci/ and of deploy/k8s, plus two edited objects the
// validator must reject.
test('schema: helm template -f ci/*.yaml and the dashboard valid; unknown fields and wrong types rejected', async () => {
  const objects = [];
  const files = fs.readdirSync(path.join(chart, 'ci')).filter((f) => f.endsWith('.yaml')).sort();
  assert.ok(files.length >= 4, `values files in ${chart}/ci: ${files}`);
  for (const file of files) {
    render(['-f', path.join(chart, 'ci', file)]).forEach((obj, i) => {
      objects.push({ where: `${file} #${i} ${obj.kind}/${obj.metadata?.name}`, obj });
    });
  }
  if (process.argv[3]) {
    parseManifests(process.argv[3]).forEach((o) => objects.push(o));
  }
  const unknown = find(render(), 'StatefulSet', 'apogee-broker-a');
  container(unknown, 'broker').livenessProbe.grpcPort = 8081;
  const mistyped = find(render(), 'StatefulSet', 'apogee-broker-a');
  mistyped.spec.replicas = 'three';
  objects.push({ where: 'edited-unknown', obj: unknown }, { where: 'edited-mistyped', obj: mistyped });

  // The Grafana dashboard against @grafana/schema's Dashboard type.
  const dashboard = path.join(chart, '..', '..', 'deploy', 'grafana', 'apogee-dashboard.json');
  const typed = [{ where: 'apogee-dashboard.json', module: '@grafana/schema', type: 'Dashboard',
    obj: JSON.parse(fs.readFileSync(dashboard, 'utf8')) }];
  const errors = await validateObjects(objects, typed);
  assert.deepEqual(errors.filter((e) => !e.startsWith('edited-')), []);
  assert.ok(errors.some((e) => e.startsWith('edited-unknown') && e.includes('grpcPort')),
    errors.join('\n'));
  assert.ok(errors.some((e) => e.startsWith('edited-mistyped') && e.includes('replicas')),
    errors.join('\n'));
});

function checkTopology(objs, { groups, slaves, nameservers }) {
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  const cm = find(objs, 'ConfigMap', 'apogee-config');
  const broker = conf(cm.data['broker.conf']);
  const store = conf(cm.data['store.conf']);

  // NameServers: one per-pod DNS name each, through the headless Service.
  const nsSts = find(objs, 'StatefulSet', 'apogee-nameserver');
  assert.equal(nsSts.spec.replicas, nameservers);
  const nsHeadless = find(objs, 'Service', nsSts.spec.serviceName);
  assert.equal(nsHeadless.spec.clusterIP, 'None');
  assert.equal(nsHeadless.spec.publishNotReadyAddresses, true);
  const expectedNs = [...Array(nameservers).keys()].map(
    (i) => `apogee-nameserver-${i}.${nsSts.spec.serviceName}.${NS}.svc.cluster.local:9876`);
  assert.deepEqual(broker.get('nameservers').split(';'), expectedNs);
  assert.ok(find(objs, 'Service', 'apogee-nameserver'), 'the clients\' NameServer Service');

  const brokerSets = ofKind(objs, 'StatefulSet').filter(
    (s) => s.metadata.labels['app.kubernetes.io/component'] === 'broker');
  assert.deepEqual(brokerSets.map((s) => s.metadata.name).sort(),
    [...letters.slice(0, groups)].map((l) => `apogee-broker-${l}`));
  const seen = new Set();
  for (const sts of brokerSets) {
    const group = sts.metadata.labels['apogee.io/broker-group'];
    assert.equal(sts.spec.replicas, 1 + slaves);
    assert.equal(sts.spec.podManagementPolicy, 'Parallel');
    const svc = find(objs, 'Service', sts.spec.serviceName);
    assert.equal(svc.spec.clusterIP, 'None', 'brokers advertise names of a headless Service');
    const podLabels = sts.spec.template.metadata.labels;
    for (const [k, v] of Object.entries(svc.spec.selector)) assert.equal(podLabels[k], v);

    const b = container(sts, 'broker');
    const s = container(sts, 'store');
    const env = Object.fromEntries(b.env.map((e) => [e.name, e]));
    // Ids come from the pod-index label the StatefulSet controller sets.
    assert.equal(env.POD_INDEX.valueFrom.fieldRef.fieldPath,
      "metadata.labels['apps.kubernetes.io/pod-index']");
    assert.equal(env.POD_NAME.valueFrom.fieldRef.fieldPath, 'metadata.name');
    assert.equal(env.POD_NAMESPACE.valueFrom.fieldRef.fieldPath, 'metadata.namespace');
    const ids = [];
    for (let ordinal = 0; ordinal <= slaves; ++ordinal) {
      const pod = `${sts.metadata.name}-${ordinal}`;
      const args = expand(b.args, { POD_NAME: pod, POD_NAMESPACE: NS, POD_INDEX: String(ordinal) });
      assert.equal(flag(args, 'broker_name'), group);
      ids.push(Number(flag(args, 'broker_id')));
      const host = `${pod}.${sts.spec.serviceName}.${NS}.svc.cluster.local`;
      assert.equal(flag(args, 'advertise'), `${host}:8081`);
      assert.equal(flag(args, 'store_ha_endpoint'), `${host}:10912`);
      assert.doesNotMatch(args.join(' '), /\b\d+\.\d+\.\d+\.\d+:/, 'no IP address is advertised');
      seen.add(`${group}/${flag(args, 'broker_id')}`);
    }
    assert.deepEqual(ids, [...Array(slaves + 1).keys()], 'ordinal 0 is the master (id 0), slaves 1..');

    // Probes: gRPC health on a port the container listens on.
    for (const c of [b, s]) {
      const ports = c.ports.map((p) => p.containerPort);
      for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
        assert.ok(c[probe]?.grpc, `${sts.metadata.name}/${c.name} ${probe} is a gRPC health probe`);
        assert.ok(ports.includes(c[probe].grpc.port), `${c.name} ${probe} port is one it opens`);
      }
    }
    // The store's data on the PVC; the socket in an emptyDir both mount.
    const [claim] = sts.spec.volumeClaimTemplates;
    assert.equal(claim.spec.accessModes[0], 'ReadWriteOnce');
    const dataMount = s.volumeMounts.find((m) => m.name === claim.metadata.name);
    assert.equal(dataMount.mountPath, store.get('data_dir'));
    const socketVolume = sts.spec.template.spec.volumes.find((v) => v.name === 'socket');
    assert.ok(socketVolume.emptyDir, 'the socket is in an emptyDir');
    const mountOf = (c) => c.volumeMounts.find((m) => m.name === socketVolume.name).mountPath;
    assert.equal(mountOf(b), mountOf(s));
    assert.equal(broker.get('store'), store.get('listen'));
    assert.ok(store.get('listen').startsWith(`unix:${mountOf(s)}/`));
    assert.ok(b.resources.requests && s.resources.requests);
  }
  assert.equal(seen.size, groups * (slaves + 1), 'ids unique within each group');
}

test('topology: defaults (2 NameServers, 1 group, 1 slave)', () => {
  checkTopology(render(), { groups: 1, slaves: 1, nameservers: 2 });
});

test('topology: 2 groups x 2 slaves, 3 NameServers', () => {
  const objs = render(['-f', path.join(chart, 'ci', 'groups-2x2-values.yaml')]);
  checkTopology(objs, { groups: 2, slaves: 2, nameservers: 3 });
  // One PDB and one anti-affinity term per group, matching its pods only.
  for (const l of 'ab') {
    const sts = find(objs, 'StatefulSet', `apogee-broker-${l}`);
    const pdb = find(objs, 'PodDisruptionBudget', `apogee-broker-${l}`);
    const labels = sts.spec.template.metadata.labels;
    for (const [k, v] of Object.entries(pdb.spec.selector.matchLabels)) assert.equal(labels[k], v);
    const term = sts.spec.template.spec.affinity.podAntiAffinity
      .preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm;
    assert.equal(term.labelSelector.matchLabels['apogee.io/broker-group'], `broker-${l}`);
    for (const [k, v] of Object.entries(term.labelSelector.matchLabels)) assert.equal(labels[k], v);
  }
});

test('topology: 5 groups without slaves, hard anti-affinity', () => {
  const objs = render(['--set', 'broker.groups=5', '--set', 'broker.slavesPerGroup=0',
    '--set', 'nameserver.replicas=1', '--set', 'antiAffinity=hard']);
  checkTopology(objs, { groups: 5, slaves: 0, nameservers: 1 });
  const sts = find(objs, 'StatefulSet', 'apogee-broker-e');
  assert.ok(sts.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution);
});

test('sync replication with the chart\'s etcd: controller flag, ServiceMonitor', () => {
  const objs = render(['-f', path.join(chart, 'ci', 'sync-values.yaml')]);
  checkTopology(objs, { groups: 1, slaves: 2, nameservers: 2 });
  const broker = conf(find(objs, 'ConfigMap', 'apogee-config').data['broker.conf']);
  const store = conf(find(objs, 'ConfigMap', 'apogee-config').data['store.conf']);
  assert.equal(broker.get('replication'), 'sync');
  assert.equal(store.get('flush'), 'async');
  const etcd = find(objs, 'StatefulSet', 'apogee-etcd');
  assert.equal(broker.get('controller'),
    `etcd:apogee-etcd-0.${etcd.spec.serviceName}.${NS}.svc.cluster.local:2379`);
  const sm = find(objs, 'ServiceMonitor', 'apogee');
  assert.deepEqual(sm.spec.endpoints.map((e) => e.port), ['metrics', 'store-metrics']);
  assert.equal(sm.metadata.labels.release, 'prometheus');
  // It selects the headless Services, which carry those ports.
  const svc = find(objs, 'Service', 'apogee-broker-a');
  assert.deepEqual(svc.spec.ports.map((p) => p.name).filter((n) => n.includes('metrics')),
    ['metrics', 'store-metrics']);
  // An existing etcd instead: no etcd pod.
  const external = render(['-f', path.join(chart, 'ci', 'sync-values.yaml'),
    '--set', 'controller.etcdEndpoints=etcd-0.etcd:2379;etcd-1.etcd:2379']);
  assert.equal(find(external, 'StatefulSet', 'apogee-etcd'), undefined);
  assert.equal(conf(find(external, 'ConfigMap', 'apogee-config').data['broker.conf']).get('controller'),
    'etcd:etcd-0.etcd:2379;etcd-1.etcd:2379');
});

test('metrics on: ports, scrape annotations; off: none of them', () => {
  const on = render();
  const off = render(['-f', path.join(chart, 'ci', 'no-metrics-values.yaml')]);
  for (const [objs, enabled] of [[on, true], [off, false]]) {
    const cm = find(objs, 'ConfigMap', 'apogee-config').data;
    for (const file of ['nameserver.conf', 'broker.conf', 'store.conf']) {
      assert.equal(conf(cm[file]).get('metrics_listen') !== '', enabled, file);
    }
    for (const sts of ofKind(objs, 'StatefulSet')) {
      const ann = sts.spec.template.metadata.annotations;
      assert.equal(ann['prometheus.io/scrape'] === 'true', enabled, sts.metadata.name);
      const ports = sts.spec.template.spec.containers.flatMap((c) => c.ports.map((p) => p.name));
      assert.equal(ports.some((p) => p.includes('metrics')), enabled, sts.metadata.name);
    }
    assert.equal(ofKind(objs, 'ServiceMonitor').length, 0);
  }
  assert.equal(ofKind(off, 'PodDisruptionBudget').length, 0);
});

test('tls and auth: certificates mounted from Secrets and passed as flags, exec probes, admin from a Secret', () => {
  const objs = render(['-f', path.join(chart, 'ci', 'tls-auth-values.yaml')]);
  const cm = find(objs, 'ConfigMap', 'apogee-config').data;
  const files = { nameserver: conf(cm['nameserver.conf']), broker: conf(cm['broker.conf']),
    store: conf(cm['store.conf']) };
  for (const [name, c] of Object.entries(files)) {
    assert.equal(c.get('tls_cert'), '/etc/apogee-tls/tls.crt', name);
    assert.equal(c.get('tls_key'), '/etc/apogee-tls/tls.key', name);
    assert.equal(c.get('tls_ca'), '/etc/apogee-tls/ca.crt', name);
    assert.equal(c.get('tls_client_auth'), 'require', name);
  }
  for (const name of ['broker', 'store']) {
    assert.equal(files[name].get('client_tls_ca'), '/etc/apogee-tls/ca.crt', name);
    assert.equal(files[name].get('client_tls_cert'), '/etc/apogee-tls/tls.crt', name);
  }
  assert.equal(files.nameserver.get('client_tls_ca'), undefined, 'the NameServer dials nobody');
  assert.equal(files.broker.get('etcd_tls_ca'), '/etc/apogee-etcd-tls/ca.crt');
  assert.equal(files.broker.get('etcd_tls_cert'), '/etc/apogee-etcd-tls/tls.crt');

  // Every file a container is given lies in a Secret volume it mounts.
  const secretOf = { '/etc/apogee-tls': 'apogee-tls', '/etc/apogee-etcd-tls': 'apogee-etcd-client' };
  const checkMounts = (sts, c, conffile) => {
    const paths = [...conffile.values()].filter((v) => v.startsWith('/etc/apogee-'));
    assert.ok(paths.length >= 3, `${c.name} is given certificate files`);
    for (const p of paths) {
      const dir = path.dirname(p);
      const mount = c.volumeMounts.find((m) => m.mountPath === dir);
      assert.ok(mount?.readOnly, `${sts.metadata.name}/${c.name} mounts ${dir} read-only`);
      const volume = sts.spec.template.spec.volumes.find((v) => v.name === mount.name);
      assert.equal(volume.secret?.secretName, secretOf[dir], `${dir} comes from its Secret`);
    }
  };
  const nsSts = find(objs, 'StatefulSet', 'apogee-nameserver');
  const brokerSts = find(objs, 'StatefulSet', 'apogee-broker-a');
  checkMounts(nsSts, container(nsSts, 'nameserver'), files.nameserver);
  checkMounts(brokerSts, container(brokerSts, 'broker'), files.broker);
  checkMounts(brokerSts, container(brokerSts, 'store'), files.store);

  // The kubelet's gRPC probes cannot speak TLS: apogee-probe with the pod's
  // certificate on a port the container opens.
  for (const [sts, name] of [[nsSts, 'nameserver'], [brokerSts, 'broker'], [brokerSts, 'store']]) {
    const c = container(sts, name);
    const ports = c.ports.map((p) => p.containerPort);
    for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
      const cmd = c[probe]?.exec?.command;
      assert.ok(cmd, `${name} ${probe} is an exec probe`);
      assert.equal(cmd[0], '/usr/local/bin/apogee-probe');
      assert.ok(ports.includes(Number(flag(cmd, 'addr').split(':')[1])), `${name} ${probe} port`);
      assert.equal(flag(cmd, 'tls_cert'), '/etc/apogee-tls/tls.crt');
      assert.ok(c.volumeMounts.some((m) => m.mountPath === '/etc/apogee-tls'));
    }
  }

  // Auth: the bootstrap admin from the Secret, on NameServers and brokers.
  for (const c of [container(nsSts, 'nameserver'), container(brokerSts, 'broker')]) {
    const env = Object.fromEntries(c.env.map((e) => [e.name, e]));
    for (const [name, key] of [['APOGEE_ADMIN_USER', 'username'], ['APOGEE_ADMIN_SECRET', 'secret']]) {
      assert.deepEqual(env[name].valueFrom.secretKeyRef, { name: 'apogee-admin', key });
    }
    const args = expand(c.args, { POD_NAME: 'p', POD_NAMESPACE: NS, POD_INDEX: '0',
      APOGEE_ADMIN_USER: 'root', APOGEE_ADMIN_SECRET: 's3cret' });
    assert.equal(flag(args, 'auth'), 'true');
    assert.equal(flag(args, 'init_admin'), 'root:s3cret');
  }
  // Off by default: no certificate flags, gRPC probes, no admin env.
  const plain = find(render(), 'ConfigMap', 'apogee-config').data;
  for (const file of Object.values(plain)) assert.doesNotMatch(file, /tls|auth/);
});

test('bad values fail with the value and the limit named', () => {
  assert.match(renderError(['--set', 'broker.groups=27']), /broker.groups is 27 \(allowed: 1..26\)/);
  assert.match(renderError(['--set', 'broker.replication=quorum']), /broker.replication is "quorum"/);
  assert.match(renderError(['--set', 'broker.replication=sync', '--set', 'broker.slavesPerGroup=0']),
    /needs broker.slavesPerGroup \(0\) >= broker.minInsyncReplicas \(1\)/);
  assert.match(renderError(['--set', 'controller.enabled=true']), /controller.etcdEndpoints/);
  assert.match(renderError(['--set', 'antiAffinity=maybe']), /antiAffinity is "maybe"/);
  assert.match(renderError(['--set', 'tls.enabled=true']), /tls.enabled needs tls.secretName/);
  assert.match(renderError(['--set', 'tls.clientAuth=maybe']),
    /tls.clientAuth is "maybe" \(allowed: none, request, require\)/);
  assert.match(renderError(['--set', 'auth.enabled=true']), /auth.enabled needs auth.adminSecretName/);
  assert.match(renderError(['--set', 'controller.etcdTls.enabled=true']),
    /controller.etcdTls.enabled needs controller.etcdTls.secretName/);
});

test('every flag the chart sets is one the binaries define', { skip: binaries.size === 0 &&
  'APOGEE_BINARIES is not set (ctest sets it)' }, () => {
  const uses = [];
  const flagNames = (args) => args.map((a) => /^--([a-z_]+)(=|$)/.exec(a)[1]);
  for (const values of ['sync-values.yaml', 'tls-auth-values.yaml']) {
    const objs = render(['-f', path.join(chart, 'ci', values)]);
    const cm = find(objs, 'ConfigMap', 'apogee-config').data;
    uses.push(['apogee-nameserver', [...conf(cm['nameserver.conf']).keys()]],
      ['apogee-broker', [...conf(cm['broker.conf']).keys()]],
      ['apogee-store', [...conf(cm['store.conf']).keys()]]);
    for (const sts of ofKind(objs, 'StatefulSet').filter((s) => !s.metadata.name.endsWith('etcd'))) {
      for (const c of sts.spec.template.spec.containers) {
        uses.push([path.basename(c.command[0]), flagNames(c.args)]);
        const probe = c.livenessProbe?.exec?.command;
        if (probe) uses.push([path.basename(probe[0]), flagNames(probe.slice(1))]);
      }
    }
  }
  for (const [binary, names] of uses) {
    const known = binaryFlags(binary);
    for (const n of names) assert.ok(known.has(n), `${binary} has no flag --${n}`);
  }
});
