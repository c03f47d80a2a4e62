#!/usr/bin/env node
// Offline validation of Kubernetes manifests, for tests/k8s_manifests_test.sh:
//   node validate.cjs --modules DIR [--config-out FILE] MANIFEST.yaml...
// DIR is where `npm ci` installed this folder's package-lock.json (DIR/node_modules).
//
// Every YAML document of every file:
//  1. parses (YAML 1.1, as the API server reads it; a duplicate key is an error);
//  2. names, by apiVersion and kind, a model of kubernetes-models (Kubernetes' OpenAPI schemas,
//     compiled to validators); an unknown kind fails;
//  3. passes the model's validate(): types, required fields, enums and formats as the schema says;
//  4. has no unknown field. validate() takes any extra key (the OpenAPI schemas do not close
//     objects), so a typo such as `imagePullpolicy` would pass it, while the API server rejects
//     it under kubectl's default --validate=strict; the field names are read from the models'
//     TypeScript declarations, which list every field of every object.
// Then the zcproxy objects are checked against each other and against the config the pods read
// (the Deployment's `-c` file, found through its volume in the ConfigMap): selectors, probe and
// Service ports, the grace period. With --config-out, that config is written to FILE, for
// `zcproxy --check`.
// Exit 0 when everything holds; 1 with each problem on a line of its own
// (FILE: document N (KIND/NAME): PATH: what); 2 on bad usage.
'use strict';
const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

function usage(why) {
  process.stderr.write(
    `${why}\nusage: node validate.cjs --modules DIR [--config-out FILE] MANIFEST.yaml...\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
let modules;
let configOut;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--modules' && i + 1 < args.length) modules = path.resolve(args[++i]);
  else if (args[i] === '--config-out' && i + 1 < args.length) configOut = args[++i];
  else if (args[i].startsWith('--')) usage(`unknown option ${args[i]}`);
  else files.push(args[i]);
}
if (!modules || files.length === 0) usage('no --modules, or no manifest');
const load = createRequire(path.join(modules, 'package.json'));
const YAML = load('yaml');

const problems = [];
const report = (where, what) => problems.push(`${where}: ${what}`);
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

// --- apiVersion/kind -> model ---------------------------------------------------------------
// kubernetes-models lays its models out as kubernetes-models/GROUP/VERSION/KIND (the core group:
// v1/KIND); the class must say the same apiVersion and kind.
const API_VERSION = /^(?:[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?\/)?v[0-9]+(?:(?:alpha|beta)[0-9]+)?$/;
const KIND = /^[A-Z][A-Za-z0-9]*$/;

function modelFor(apiVersion, kind) {
  if (typeof apiVersion !== 'string' || !API_VERSION.test(apiVersion))
    return { error: `apiVersion ${JSON.stringify(apiVersion)} is not GROUP/VERSION or VERSION` };
  if (typeof kind !== 'string' || !KIND.test(kind))
    return { error: `kind ${JSON.stringify(kind)} is not a kind's name` };
  const id = `kubernetes-models/${apiVersion}/${kind}`;
  let file;
  let cls;
  try {
    file = load.resolve(id);
    cls = load(id)[kind];
  } catch {
    return { error: `unknown kind: Kubernetes' schemas have no ${kind} in ${apiVersion}` };
  }
  if (typeof cls !== 'function' || cls.apiVersion !== apiVersion || cls.kind !== kind)
    return { error: `unknown kind: Kubernetes' schemas have no ${kind} in ${apiVersion}` };
  return { cls, declarations: file.replace(/\.js$/, '.d.ts') };
}

// --- field names, from the TypeScript declarations -----------------------------------------
// Each model's .d.ts has `export interface IName { "field"?: TYPE; ... }` (TYPE on one line, or
// a map `{ [key: string]: T; }` over several) and `export { IName as IIoK8s...Name, ... }`, the
// global name other declarations import it by.
const interfaces = new Map(); // global name -> { props: Map(field -> TYPE), local }
const declared = new Map(); // .d.ts file -> its interfaces by local name

function parseDeclarations(file) {
  if (declared.has(file)) return declared.get(file);
  const local = new Map();
  declared.set(file, local);
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const head = /^export interface (\w+)(?: extends [^{]*)? \{$/.exec(lines[i]);
    if (!head) continue;
    const props = new Map();
    for (i++; i < lines.length && lines[i] !== '}'; i++) {
      const p = /^ {4}"([^"]+)"\??: (.*)$/.exec(lines[i]);
      if (!p) continue;
      let type = p[2];
      if (!type.endsWith(';')) // continued: up to the line that closes it at this indentation
        while (i + 1 < lines.length) {
          type += ' ' + lines[++i].trim();
          if (/^ {4}[}\]>]/.test(lines[i])) break;
        }
      type = type.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/\s+/g, ' ').trim();
      props.set(p[1], type.replace(/;$/, ''));
    }
    local.set(head[1], { props, local });
  }
  const text = lines.join('\n');
  for (const m of text.matchAll(/^export \{ ([^}]*) \};?$/gm))
    for (const part of m[1].split(',')) {
      const alias = /^\s*(\w+) as (\w+)\s*$/.exec(part);
      if (alias && local.has(alias[1])) interfaces.set(alias[2], local.get(alias[1]));
    }
  return local;
}

function declarationFiles(dir, out = []) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === '_schemas' || entry.name === 'node_modules') continue;
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) declarationFiles(p, out);
    else if (entry.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}
for (const pkg of ['kubernetes-models', '@kubernetes-models/apimachinery'])
  for (const f of declarationFiles(path.join(modules, 'node_modules', pkg))) parseDeclarations(f);

// A TYPE as something to walk: an interface, an array or a map of one; null for what has no
// fields to check (scalars, literals, unions, inline objects).
function resolveType(text, local) {
  let m;
  if ((m = /^Array<(.*)>$/.exec(text))) return { array: m[1], local };
  if ((m = /^\{ \[key: string\]: (.*?);? \}$/.exec(text))) return { map: m[1], local };
  if (/^\w+$/.test(text)) return local.get(text) || interfaces.get(text) || null;
  return null;
}

function checkFields(value, type, at, where) {
  if (!type || value === null || value === undefined) return;
  if (type.array !== undefined) {
    if (Array.isArray(value))
      value.forEach((v, k) =>
        checkFields(v, resolveType(type.array, type.local), `${at}/${k}`, where));
    return;
  }
  if (type.map !== undefined) {
    if (isObject(value))
      for (const [k, v] of Object.entries(value))
        checkFields(v, resolveType(type.map, type.local), `${at}/${k}`, where);
    return;
  }
  if (!isObject(value) || type.props.size === 0) return;
  for (const [k, v] of Object.entries(value)) {
    if (!type.props.has(k)) {
      const near = [...type.props.keys()].find((f) => f.toLowerCase() === k.toLowerCase());
      const hint = near ? ` (did you mean "${near}"?)` : '';
      report(`${where}: ${at}/${k}`, `unknown field "${k}"${hint}`);
    } else {
      checkFields(v, resolveType(type.props.get(k), type.local), `${at}/${k}`, where);
    }
  }
}

// --- every document --------------------------------------------------------------------------
const documents = []; // { where, obj } of every valid document
for (const file of files) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    report(file, e.message);
    continue;
  }
  const docs = YAML.parseAllDocuments(text, { version: '1.1', prettyErrors: false });
  const all = Array.isArray(docs) ? docs : [docs];
  all.forEach((doc, k) => {
    const n = k + 1;
    if (doc.errors.length || doc.warnings.length) {
      for (const e of [...doc.errors, ...doc.warnings])
        report(`${file}: document ${n}`, `YAML: ${e.message.split('\n')[0]}`);
      return;
    }
    const obj = doc.toJS({ maxAliasCount: 100 });
    if (obj === null || obj === undefined) return; // an empty document (a trailing ---)
    if (!isObject(obj)) {
      report(`${file}: document ${n}`, 'not a map (an object with apiVersion and kind)');
      return;
    }
    const where = `${file}: document ${n} (${obj.kind}/${obj.metadata && obj.metadata.name})`;
    const model = modelFor(obj.apiVersion, obj.kind);
    if (model.error) {
      report(where, model.error);
      return;
    }
    let valid = true;
    try {
      new model.cls(obj).validate();
    } catch (e) {
      valid = false;
      const errors = Array.isArray(e.errors) && e.errors.length ? e.errors : [];
      for (const err of errors) {
        const extra = err.params && err.params.allowedValues
          ? ` (${err.params.allowedValues.map((v) => JSON.stringify(v)).join(', ')})` : '';
        report(`${where}: ${err.instancePath || '/'}`, `${err.message}${extra}`);
      }
      if (!errors.length) report(where, e.message);
    }
    const before = problems.length;
    const root = parseDeclarations(model.declarations).get(`I${obj.kind}`);
    if (!root) report(where, `no declaration of ${obj.kind} in ${model.declarations}`);
    else checkFields(obj, root, '', where);
    if (valid && problems.length === before) documents.push({ where, obj });
  });
}

// --- the zcproxy objects, with each other and with the config --------------------------------
function portOf(bind) {
  const m = typeof bind === 'string' && /^(?:\[[^\]]*\]|[^:[\]]*):([0-9]+)$/.exec(bind);
  return m ? Number(m[1]) : undefined;
}
function seconds(duration, fallback) {
  if (duration === undefined) return fallback;
  const m = /^([0-9]+)(ms|s|m|h)$/.exec(String(duration));
  if (!m) return undefined;
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2]];
}

function checkZcproxy() {
  const find = (kind, name) =>
    documents.find((d) => d.obj.kind === kind && d.obj.metadata && d.obj.metadata.name === name);
  const deployment = find('Deployment', 'zcproxy');
  if (!deployment) return report('manifests', 'no valid Deployment named zcproxy');
  const spec = deployment.obj.spec || {};
  const pod = (spec.template && spec.template.spec) || {};
  const labels = (spec.template && spec.template.metadata && spec.template.metadata.labels) || {};
  const selects = (selector) => isObject(selector) && Object.keys(selector).length > 0 &&
      Object.entries(selector).every(([k, v]) => labels[k] === v);
  const at = (doc, p, what) => report(`${doc.where}: ${p}`, what);

  if (!selects(spec.selector && spec.selector.matchLabels))
    at(deployment, '/spec/selector/matchLabels', "does not select the pod template's labels");
  const service = find('Service', 'zcproxy');
  if (!service) report('manifests', 'no valid Service named zcproxy');
  else if (!selects(service.obj.spec && service.obj.spec.selector))
    at(service, '/spec/selector', "does not select the zcproxy Deployment's pods");
  const budget = find('PodDisruptionBudget', 'zcproxy');
  if (!budget) report('manifests', 'no valid PodDisruptionBudget named zcproxy');
  else if (!selects(((budget.obj.spec || {}).selector || {}).matchLabels))
    at(budget, '/spec/selector/matchLabels', "does not select the zcproxy Deployment's pods");

  const k = (pod.containers || []).findIndex((c) => c.name === 'zcproxy');
  if (k < 0) return at(deployment, '/spec/template/spec/containers', 'no container named zcproxy');
  const c = pod.containers[k];
  const cAt = `/spec/template/spec/containers/${k}`;
  const argv = [...(c.command || []), ...(c.args || [])];
  const flag = argv.findIndex((a) => a === '-c' || a === '--config');
  const file = flag >= 0 ? argv[flag + 1] : undefined;
  if (typeof file !== 'string' || !file.startsWith('/'))
    return at(deployment, `${cAt}/args`, 'no `-c /ABSOLUTE/PATH` for the config');
  const under = (m) => file.startsWith(`${m.mountPath.replace(/\/$/, '')}/`);
  const mount = (c.volumeMounts || []).find((m) => !m.subPath && under(m));
  if (!mount)
    return at(deployment, `${cAt}/volumeMounts`,
              `none holds ${file} (a subPath mount never sees a ConfigMap change)`);
  const volume = (pod.volumes || []).find((v) => v.name === mount.name);
  if (!volume || !volume.configMap)
    return at(deployment, '/spec/template/spec/volumes', `volume ${mount.name} is not a ConfigMap`);
  const configMap = find('ConfigMap', volume.configMap.name);
  if (!configMap) return report('manifests', `no valid ConfigMap named ${volume.configMap.name}`);
  let key = file.slice(mount.mountPath.replace(/\/$/, '').length + 1);
  if (volume.configMap.items) {
    const item = volume.configMap.items.find((it) => it.path === key);
    key = item ? item.key : undefined;
  }
  const text = key !== undefined && configMap.obj.data ? configMap.obj.data[key] : undefined;
  if (typeof text !== 'string')
    return at(configMap, '/data', `has no key for ${file}, the file the zcproxy container reads`);
  if (configOut) fs.writeFileSync(configOut, text);

  let config;
  try {
    config = YAML.parse(text);
  } catch (e) {
    return at(configMap, `/data/${key}`, `YAML: ${e.message.split('\n')[0]}`);
  }
  if (!isObject(config)) return at(configMap, `/data/${key}`, 'is not a map');
  const where = `${configMap.where}: /data/${key}`;

  // Named container ports, and what the pod listens on.
  const named = new Map(
    (c.ports || []).filter((p) => p.name).map((p) => [p.name, p.containerPort]));
  const number = (p) => (typeof p === 'number' ? p : named.get(p));
  const listening = new Set(
    (config.listeners || []).map((l) => portOf(l && l.bind)).filter(Boolean));

  // The probes: GET /healthz on the admin listener, which must not be on loopback.
  const admin = config.admin; // `admin:` alone (null) is on, at the default bind
  const adminBind = isObject(admin) && admin.bind !== undefined ? admin.bind : '127.0.0.1:9901';
  if (admin === undefined)
    report(where, 'no admin: section, so nothing answers the probes on /healthz');
  else if (/^(127\.|\[::1\]|localhost)/.test(String(adminBind)))
    report(where, `admin.bind ${adminBind} is loopback: the kubelet probes the pod's IP`);
  for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
    if (!c[probe]) {
      if (probe !== 'startupProbe') at(deployment, `${cAt}`, `no ${probe}`);
      continue;
    }
    const get = c[probe].httpGet;
    if (!get || get.path !== '/healthz' || number(get.port) !== portOf(adminBind))
      at(deployment, `${cAt}/${probe}`,
         `is not an httpGet of /healthz on the admin port ${portOf(adminBind)}`);
  }
  // The Service reaches a listener.
  if (service)
    ((service.obj.spec && service.obj.spec.ports) || []).forEach((p, j) => {
      const target = number(p.targetPort === undefined ? p.port : p.targetPort);
      if (!listening.has(target))
        at(service, `/spec/ports/${j}/targetPort`,
           `${p.targetPort} is no listener's port (${[...listening].join(', ')})`);
    });
  // The grace period covers the preStop hook and the drain.
  const grace = pod.terminationGracePeriodSeconds === undefined
    ? 30 : pod.terminationGracePeriodSeconds;
  const drain = seconds(config.drain_timeout, 10);
  const preStop = (c.lifecycle && c.lifecycle.preStop && c.lifecycle.preStop.sleep &&
      c.lifecycle.preStop.sleep.seconds) || 0;
  if (drain === undefined) report(where, `drain_timeout ${config.drain_timeout} is not a duration`);
  else if (!(grace > preStop + drain))
    at(deployment, '/spec/template/spec/terminationGracePeriodSeconds',
       `${grace} s does not exceed the preStop sleep (${preStop} s) + drain_timeout (${drain} s)`);
}

if (problems.length === 0) checkZcproxy();
if (problems.length) {
  for (const p of problems) process.stdout.write(`${p}\n`);
  process.stdout.write(`FAILED: ${problems.length} problem(s) in ${files.length} file(s)\n`);
  process.exit(1);
}
const kinds = documents.map((d) => d.obj.kind).join(', ');
const version = load('kubernetes-models/package.json').version;
process.stdout.write(
  `valid: ${documents.length} documents in ${files.length} files (${kinds}), ` +
  `kubernetes-models ${version}\n`);
