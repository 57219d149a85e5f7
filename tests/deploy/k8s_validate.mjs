// Validates Kubernetes manifests offline against the API schemas of the npm
// package kubernetes-models (and prometheus-operator's for ServiceMonitor):
//   node k8s_validate.mjs FILE.yaml...
// Two checks per object: the package's JSON-schema validator (types, enums,
// required fields, formats) and TypeScript's excess-property check on the
// object typed as the kind's interface, which rejects unknown fields (the
// schema validator alone accepts them). NODE_PATH names the node_modules.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const modules = process.env.NODE_PATH;
if (!modules) throw new Error('NODE_PATH must name the node_modules of tests/deploy/package.json');
const load = (spec) => import(pathToFileURL(path.join(modules, spec)).href);
const yaml = (await load('js-yaml/index.js')).default;

// apiVersion -> module folder; the interface is I<kind>.
const GROUPS = {
  'v1': 'kubernetes-models/v1',
  'apps/v1': 'kubernetes-models/apps/v1',
  'policy/v1': 'kubernetes-models/policy/v1',
  'monitoring.coreos.com/v1': '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1',
};

// `typed`: more objects for the TypeScript check only, each
// {where, module, type, obj} (e.g. a Grafana dashboard as @grafana/schema's
// Dashboard).
export async function validateObjects(objects, typed = []) {
  const errors = [];
  const checks = [...typed];
  for (const { where, obj } of objects) {
    const dir = GROUPS[obj?.apiVersion];
    if (!dir) {
      errors.push(`${where}: apiVersion "${obj?.apiVersion}" is not one this validator knows`);
      continue;
    }
    const file = path.join(modules, dir, `${obj.kind}.js`);
    if (!fs.existsSync(file)) {
      errors.push(`${where}: kind ${obj.apiVersion}/${obj.kind} does not exist`);
      continue;
    }
    const Model = (await load(`${dir}/${obj.kind}.js`))[obj.kind];
    try {
      new Model(obj).validate();
    } catch (e) {
      errors.push(`${where}: ${e.message}`);
    }
    checks.push({ where, module: `${dir}/${obj.kind}`, type: `I${obj.kind}`, obj });
  }
  errors.push(...unknownFields(checks));
  return errors;
}

// One TypeScript file assigning each object to its type (a kind's
// interface); tsc's excess-property errors name the unknown fields.
function unknownFields(checks) {
  if (checks.length === 0) return [];
  const work = fs.mkdtempSync(path.join(path.dirname(modules), 'tsc-'));
  try {
    const lines = [];
    checks.forEach((c, i) => {
      lines.push(`import type { ${c.type} as T${i} } from "${c.module}";`);
    });
    const starts = [];
    checks.forEach((c, i) => {
      starts.push(lines.length + 1);
      lines.push(`export const o${i}: T${i} = ${JSON.stringify(c.obj)};`);
    });
    fs.writeFileSync(path.join(work, 'objects.ts'), lines.join('\n') + '\n');
    fs.writeFileSync(path.join(work, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        strict: true, noEmit: true, skipLibCheck: true, module: 'nodenext',
        moduleResolution: 'nodenext', target: 'es2022', typeRoots: [],
      },
      files: ['objects.ts'],
    }));
    try {
      execFileSync(process.execPath, [path.join(modules, 'typescript/bin/tsc'), '-p', work],
        { encoding: 'utf8', stdio: 'pipe' });
      return [];
    } catch (e) {
      const out = `${e.stdout}${e.stderr}`.trim().split('\n').filter((l) => l.includes('error'));
      return out.map((l) => {
        const m = /objects\.ts\((\d+),\d+\): (.*)$/.exec(l);
        if (!m) return l;
        const line = Number(m[1]);
        let idx = starts.findIndex((s) => s === line);
        return `${idx >= 0 ? checks[idx].where : `line ${line}`}: ${m[2]}`;
      });
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

export function parseManifests(file) {
  const out = [];
  yaml.loadAll(fs.readFileSync(file, 'utf8')).forEach((obj, i) => {
    if (obj == null) return;
    out.push({ where: `${path.basename(file)} #${i} ${obj.kind}/${obj.metadata?.name}`, obj });
  });
  return out;
}

export { yaml };

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    console.error('usage: node k8s_validate.mjs FILE.yaml...');
    process.exit(2);
  }
  const objects = files.flatMap(parseManifests);
  const errors = await validateObjects(objects);
  for (const e of errors) console.error(`invalid: ${e}`);
  console.log(`${objects.length} objects in ${files.length} files: ${errors.length} errors`);
  process.exit(errors.length === 0 ? 0 : 1);
}
