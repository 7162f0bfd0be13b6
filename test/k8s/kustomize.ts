// A small, offline kustomize renderer for the project's own kustomizations (k8s/**, and what
// scripts/k8s-ablation.sh writes). kustomize itself is not installed on the project's machines; where
// `kubectl kustomize` happens to exist, test/k8s/manifests.test.ts renders with both and requires identical objects.
//
// It applies exactly the features the project uses, and refuses every other kustomization field, so a new feature
// in a kustomization fails here loudly instead of being silently ignored:
//   resources         files (multi-document YAML) and directories holding a kustomization (recursively)
//   configMapGenerator files (key=path or path) and literals; behavior create | replace | merge; options /
//                     generatorOptions: disableNameSuffixHash, labels, annotations; the name suffix is kustomize's
//                     content hash (api/hasher), and references to the ConfigMap in pod templates follow it
//   patches           JSON 6902 only (inline `patch` or `path`), with a target (kind, name as anchored regular
//                     expressions, group, version, namespace)
//   images            name -> newName / newTag / digest
//   replicas          name -> count (Deployment, StatefulSet, ReplicaSet)
//   namespace         set on every namespaced object
//   replacements      inline only: a source {kind, name, fieldPath} (exactly one object; a missing field is an error, as
//                     in kustomize) copied into targets [{select: {kind, name}, fieldPaths, options: {create, delimiter,
//                     index}}]; fieldPaths are dotted paths of object keys and list indexes (`rules.0.resourceNames.1`);
//                     delimiter + index replace one part of the target's string (an index inside it only)
//   components        directories holding a `kind: Component` kustomization (apiVersion
//                     kustomize.config.k8s.io/v1alpha1): after the resources, each in order adds its own resources and
//                     generators and runs its transformers over everything accumulated so far (kustomize's order)
// Transformers run in kustomize's order: generators, patches, namespace, replicas, images, replacements; hash suffixes
// last.
//
// Every file a kustomization names must exist (a missing one is an error naming the kustomization and the entry).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import YAML from 'yaml';

export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [k: string]: unknown;
};

const KUSTOMIZATION_FILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];
const SUPPORTED_FIELDS = new Set([
  'apiVersion', 'kind', 'resources', 'components', 'configMapGenerator', 'generatorOptions', 'patches', 'images', 'replicas', 'namespace',
  'replacements',
]);
/** Kinds that are not namespaced (among those a kustomization here could contain). */
const CLUSTER_SCOPED = new Set([
  'Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'PersistentVolume', 'StorageClass',
  'PriorityClass', 'ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration', 'ClusterScaledObject',
  'ClusterTriggerAuthentication', 'RuntimeClass', 'IngressClass',
]);
const POD_TEMPLATE_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job']);

/** Parses YAML the way Kubernetes does (YAML 1.1: `0440` is octal), refusing duplicate keys. */
export function parseK8sYaml(text: string, source: string): unknown[] {
  const docs = YAML.parseAllDocuments(text, { version: '1.1', uniqueKeys: true, prettyErrors: true });
  const out: unknown[] = [];
  for (const d of docs) {
    if (d.errors.length > 0) throw new Error(`${source}: invalid YAML: ${d.errors[0]!.message}`);
    const v = d.toJS({ maxAliasCount: 0 });
    if (v !== null && v !== undefined) out.push(v);
  }
  return out;
}

interface Internal {
  obj: K8sObject;
  /** Generated ConfigMap that still needs kustomize's hash suffix at the end. */
  needsHash: boolean;
}

export interface RenderOptions {
  /** Files every kustomization named, collected while rendering (for "every file exists" checks). */
  visited?: Set<string>;
}

/** Renders the kustomization in `dir` to the list of Kubernetes objects `kubectl kustomize dir` would print. */
export function renderKustomization(dir: string, opts: RenderOptions = {}): K8sObject[] {
  const items = build(resolve(dir), opts.visited ?? new Set(), []);
  return finalise(items);
}

function kustomizationFile(dir: string): string | undefined {
  for (const f of KUSTOMIZATION_FILES) if (existsSync(join(dir, f))) return join(dir, f);
  return undefined;
}

function asList<T>(v: unknown, what: string): T[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new Error(`${what} must be a list`);
  return v as T[];
}

function idOf(o: K8sObject): string {
  const group = o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : '';
  return `${group}/${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
}

function checkObject(v: unknown, source: string): K8sObject {
  const o = v as K8sObject;
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new Error(`${source}: a document is not a mapping`);
  if (typeof o.apiVersion !== 'string' || typeof o.kind !== 'string') throw new Error(`${source}: a document lacks apiVersion or kind`);
  if (typeof o.metadata?.name !== 'string' || !o.metadata.name) throw new Error(`${source}: ${o.kind} without metadata.name`);
  return o;
}

/**
 * The objects of the kustomization in `dir`. `into`: the objects accumulated so far when `dir` is a component (it adds
 * its own and transforms them all); undefined for a Kustomization.
 */
function build(dir: string, visited: Set<string>, stack: string[], into?: Internal[]): Internal[] {
  const kfile = kustomizationFile(dir);
  if (!kfile) throw new Error(`${dir}: no kustomization.yaml`);
  if (stack.includes(kfile)) throw new Error(`kustomization cycle: ${[...stack, kfile].join(' -> ')}`);
  visited.add(kfile);
  const [k] = parseK8sYaml(readFileSync(kfile, 'utf8'), kfile) as Record<string, unknown>[];
  if (!k || typeof k !== 'object') throw new Error(`${kfile}: empty kustomization`);
  for (const key of Object.keys(k)) {
    if (!SUPPORTED_FIELDS.has(key)) throw new Error(`${kfile}: field "${key}" is not supported by test/k8s/kustomize.ts (add it there, tested against kubectl kustomize)`);
  }
  const isComponent = k.kind === 'Component';
  if (isComponent !== (into !== undefined)) {
    throw new Error(into ? `${kfile}: listed in components but its kind is ${String(k.kind ?? 'Kustomization')}, not Component` : `${kfile}: a Component is rendered only from a kustomization's components, not on its own or as a resource`);
  }
  if (isComponent && k.apiVersion !== 'kustomize.config.k8s.io/v1alpha1') throw new Error(`${kfile}: a Component's apiVersion is kustomize.config.k8s.io/v1alpha1, not ${String(k.apiVersion)}`);
  const here = (p: string, what: string): string => {
    const full = resolve(dir, p);
    if (!existsSync(full)) throw new Error(`${kfile}: ${what} "${p}" does not exist`);
    visited.add(full);
    return full;
  };

  // resources
  let items: Internal[] = into ?? [];
  for (const r of asList<string>(k.resources, `${kfile}: resources`)) {
    const full = here(r, 'resource');
    if (statSync(full).isDirectory()) items.push(...build(full, visited, [...stack, kfile]));
    else {
      for (const doc of parseK8sYaml(readFileSync(full, 'utf8'), full)) items.push({ obj: checkObject(doc, full), needsHash: false });
    }
  }
  assertUnique(items, kfile);

  // components, in order, over what the resources accumulated
  for (const c of asList<string>(k.components, `${kfile}: components`)) {
    const full = here(c, 'component');
    if (!statSync(full).isDirectory()) throw new Error(`${kfile}: component "${c}" is not a directory`);
    items = build(full, visited, [...stack, kfile], items);
  }

  // configMapGenerator
  const gopts = (k.generatorOptions ?? {}) as GeneratorOptions;
  for (const g of asList<ConfigMapArgs>(k.configMapGenerator, `${kfile}: configMapGenerator`)) {
    const data: Record<string, string> = {};
    for (const f of asList<string>(g.files, `${kfile}: configMapGenerator ${g.name} files`)) {
      const eq = f.indexOf('=');
      const [key, p] = eq > 0 ? [f.slice(0, eq), f.slice(eq + 1)] : [basename(f), f];
      data[key] = readFileSync(here(p, `configMapGenerator ${g.name} file`), 'utf8');
    }
    for (const l of asList<string>(g.literals, `${kfile}: configMapGenerator ${g.name} literals`)) {
      const eq = l.indexOf('=');
      if (eq <= 0) throw new Error(`${kfile}: configMapGenerator ${g.name}: literal "${l}" is not key=value`);
      data[l.slice(0, eq)] = l.slice(eq + 1);
    }
    for (const key of Object.keys(g)) {
      if (!['name', 'namespace', 'behavior', 'files', 'literals', 'options'].includes(key)) {
        throw new Error(`${kfile}: configMapGenerator field "${key}" is not supported by test/k8s/kustomize.ts`);
      }
    }
    const o = { ...gopts, ...(g.options ?? {}) };
    const behavior = g.behavior ?? 'create';
    const existing = items.find((i) => i.obj.kind === 'ConfigMap' && i.obj.metadata.name === g.name && (g.namespace === undefined || i.obj.metadata.namespace === g.namespace));
    if (behavior === 'create') {
      if (existing) throw new Error(`${kfile}: configMapGenerator ${g.name}: already exists (use behavior: replace or merge)`);
      const cm: K8sObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: g.name }, data };
      if (g.namespace) cm.metadata.namespace = g.namespace;
      if (o.labels) cm.metadata.labels = { ...o.labels };
      if (o.annotations) cm.metadata.annotations = { ...o.annotations };
      items.push({ obj: cm, needsHash: !o.disableNameSuffixHash });
    } else if (behavior === 'replace' || behavior === 'merge') {
      if (!existing) throw new Error(`${kfile}: configMapGenerator ${g.name}: behavior ${behavior} but no such ConfigMap in the resources`);
      existing.obj.data = behavior === 'replace' ? data : { ...(existing.obj.data as Record<string, string>), ...data };
      if (o.labels) existing.obj.metadata.labels = { ...existing.obj.metadata.labels, ...o.labels };
      if (o.annotations) existing.obj.metadata.annotations = { ...existing.obj.metadata.annotations, ...o.annotations };
      if (o.disableNameSuffixHash !== undefined) existing.needsHash = !o.disableNameSuffixHash;
    } else throw new Error(`${kfile}: configMapGenerator ${g.name}: unknown behavior ${behavior}`);
  }

  // patches (JSON 6902)
  for (const [i, p] of asList<PatchArgs>(k.patches, `${kfile}: patches`).entries()) {
    const what = `${kfile}: patches[${i}]`;
    if ((p.patch === undefined) === (p.path === undefined)) throw new Error(`${what}: needs exactly one of patch, path`);
    const text = p.patch ?? readFileSync(here(p.path!, 'patch'), 'utf8');
    const [ops] = parseK8sYaml(text, what);
    if (!Array.isArray(ops)) throw new Error(`${what}: only JSON 6902 patches (a list of operations) are supported by test/k8s/kustomize.ts`);
    if (!p.target) throw new Error(`${what}: a JSON 6902 patch needs a target`);
    const targets = items.filter((it) => matchesTarget(it.obj, p.target!));
    if (targets.length === 0) throw new Error(`${what}: target ${JSON.stringify(p.target)} matches no object`);
    for (const t of targets) {
      const patched = applyJson6902(t.obj, ops as JsonOp[], `${what} on ${t.obj.kind}/${t.obj.metadata.name}`);
      t.obj = checkObject(patched, what);
    }
  }

  // namespace
  if (k.namespace !== undefined) {
    if (typeof k.namespace !== 'string') throw new Error(`${kfile}: namespace must be a string`);
    for (const it of items) if (!CLUSTER_SCOPED.has(it.obj.kind)) it.obj.metadata.namespace = k.namespace;
  }

  // replicas
  for (const r of asList<{ name: string; count: number }>(k.replicas, `${kfile}: replicas`)) {
    const hit = items.filter((it) => ['Deployment', 'StatefulSet', 'ReplicaSet'].includes(it.obj.kind) && it.obj.metadata.name === r.name);
    if (hit.length === 0) throw new Error(`${kfile}: replicas: no workload named ${r.name}`);
    for (const it of hit) (it.obj.spec as Record<string, unknown>).replicas = r.count;
  }

  // images
  for (const img of asList<ImageArgs>(k.images, `${kfile}: images`)) {
    for (const it of items) {
      for (const c of containersOf(it.obj)) {
        const ref = parseImage(c.image as string);
        if (ref.name !== img.name) continue;
        const name = img.newName ?? ref.name;
        if (img.digest) c.image = `${name}@${img.digest}`;
        else if (img.newTag) c.image = `${name}:${img.newTag}`;
        else c.image = `${name}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
      }
    }
  }

  // replacements (kustomize runs them after its other transformers)
  for (const [i, r] of asList<ReplacementArgs>(k.replacements, `${kfile}: replacements`).entries()) applyReplacement(items, r, `${kfile}: replacements[${i}]`);
  assertUnique(items, kfile);
  return items;
}

interface ReplacementArgs {
  source?: { kind?: string; name?: string; fieldPath?: string; [k: string]: unknown };
  targets?: {
    select?: { kind?: string; name?: string; [k: string]: unknown };
    fieldPaths?: string[];
    options?: { create?: boolean; delimiter?: string; index?: number; [k: string]: unknown };
    [k: string]: unknown;
  }[];
  [k: string]: unknown;
}

function applyReplacement(items: Internal[], r: ReplacementArgs, what: string): void {
  const only = (o: object | undefined, keys: string[], where: string) => {
    for (const key of Object.keys(o ?? {})) if (!keys.includes(key)) throw new Error(`${what}: ${where} field "${key}" is not supported by test/k8s/kustomize.ts`);
  };
  only(r, ['source', 'targets'], 'replacement');
  const src = r.source;
  if (!src?.kind || !src.name || !src.fieldPath) throw new Error(`${what}: source needs kind, name and fieldPath`);
  only(src, ['kind', 'name', 'fieldPath'], 'source');
  const path = (p: string) => {
    if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(p)) throw new Error(`${what}: fieldPath "${p}" is not supported by test/k8s/kustomize.ts (dotted object keys and list indexes only)`);
    return p.split('.');
  };
  const sources = items.filter((it) => it.obj.kind === src.kind && it.obj.metadata.name === src.name);
  if (sources.length !== 1) throw new Error(`${what}: source ${src.kind}/${src.name} matches ${sources.length} objects, not one`);
  let value: unknown = sources[0]!.obj;
  for (const seg of path(src.fieldPath)) value = value && typeof value === 'object' ? (value as Record<string, unknown>)[seg] : undefined;
  if (value === undefined) throw new Error(`${what}: fieldPath ${src.fieldPath} is missing for replacement source ${src.kind}/${src.name}`);
  for (const t of asList<NonNullable<ReplacementArgs['targets']>[number]>(r.targets, `${what}: targets`)) {
    only(t, ['select', 'fieldPaths', 'options'], 'target');
    only(t.select, ['kind', 'name'], 'select');
    only(t.options, ['create', 'delimiter', 'index'], 'options');
    const { delimiter, index } = t.options ?? {};
    if ((delimiter === undefined) !== (index === undefined)) throw new Error(`${what}: options delimiter and index are modelled only together by test/k8s/kustomize.ts`);
    for (const it of items.filter((x) => (!t.select?.kind || x.obj.kind === t.select.kind) && (!t.select?.name || x.obj.metadata.name === t.select.name))) {
      for (const fp of asList<string>(t.fieldPaths, `${what}: fieldPaths`)) {
        const segs = path(fp);
        const missing = (why = '') => new Error(`${what}: fieldPath ${fp} is missing in ${it.obj.kind}/${it.obj.metadata.name}${why}`);
        // a list is entered only by an index inside it (kustomize's `[name=value]` selectors are not modelled)
        const key = (node: object, seg: string): string => {
          if (Array.isArray(node) && !(/^(0|[1-9][0-9]*)$/.test(seg) && Number(seg) < node.length)) throw missing(` (no list item ${seg})`);
          return seg;
        };
        let node = it.obj as Record<string, unknown>;
        for (const seg of segs.slice(0, -1)) {
          if (node[key(node, seg)] === undefined && t.options?.create) node[seg] = {};
          const next = node[seg];
          if (!next || typeof next !== 'object') throw missing();
          node = next as Record<string, unknown>;
        }
        const last = key(node, segs.at(-1)!);
        if (node[last] === undefined && !t.options?.create) throw missing(' (without options.create; not modelled by test/k8s/kustomize.ts)');
        if (delimiter === undefined) {
          node[last] = structuredClone(value);
          continue;
        }
        // one part of the target's string: kustomize splits it at the delimiter and puts the value in part `index`
        const target = node[last];
        if (typeof target !== 'string' || typeof value !== 'string') throw new Error(`${what}: options.delimiter on ${fp} of ${it.obj.kind}/${it.obj.metadata.name}: source and target must be strings`);
        const parts = target.split(delimiter);
        if (!Number.isInteger(index) || index! < 0 || index! >= parts.length) throw new Error(`${what}: options.index ${index} is outside "${target}" split at "${delimiter}" (not modelled by test/k8s/kustomize.ts)`);
        parts[index!] = value;
        node[last] = parts.join(delimiter);
      }
    }
  }
}

interface GeneratorOptions {
  disableNameSuffixHash?: boolean;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface ConfigMapArgs {
  name: string;
  namespace?: string;
  behavior?: 'create' | 'replace' | 'merge';
  files?: string[];
  literals?: string[];
  options?: GeneratorOptions;
}
interface PatchArgs {
  patch?: string;
  path?: string;
  target?: { group?: string; version?: string; kind?: string; name?: string; namespace?: string; [k: string]: unknown };
}
interface ImageArgs {
  name: string;
  newName?: string;
  newTag?: string;
  digest?: string;
}
type JsonOp = { op: string; path: string; value?: unknown; from?: string };

function assertUnique(items: Internal[], where: string): void {
  const seen = new Set<string>();
  for (const it of items) {
    const id = idOf(it.obj);
    if (seen.has(id)) throw new Error(`${where}: two objects with the same id ${id}`);
    seen.add(id);
  }
}

function matchesTarget(o: K8sObject, t: NonNullable<PatchArgs['target']>): boolean {
  for (const key of Object.keys(t)) {
    if (!['group', 'version', 'kind', 'name', 'namespace'].includes(key)) throw new Error(`patch target field "${key}" is not supported by test/k8s/kustomize.ts`);
  }
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
  const re = (pattern: string, value: string) => new RegExp(`^(?:${pattern})$`).test(value);
  if (t.group !== undefined && !re(t.group, group!)) return false;
  if (t.version !== undefined && !re(t.version, version!)) return false;
  if (t.kind !== undefined && !re(t.kind, o.kind)) return false;
  if (t.name !== undefined && !re(t.name, o.metadata.name)) return false;
  if (t.namespace !== undefined && !re(t.namespace, o.metadata.namespace ?? '')) return false;
  return true;
}

function pointer(path: string, what: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new Error(`${what}: JSON pointer "${path}" must start with /`);
  return path.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** RFC 6902 add / remove / replace / move / copy / test on a copy of `doc`. */
export function applyJson6902(doc: unknown, ops: JsonOp[], what: string): unknown {
  let root = structuredClone(doc);
  const parentOf = (segs: string[], p: string): [Record<string, unknown> | unknown[], string] => {
    let node: unknown = root;
    for (const s of segs.slice(0, -1)) {
      if (Array.isArray(node)) node = node[Number(s)];
      else if (node && typeof node === 'object') node = (node as Record<string, unknown>)[s];
      else node = undefined;
      if (node === undefined) throw new Error(`${what}: path ${p}: "${s}" does not exist`);
    }
    if (!node || typeof node !== 'object') throw new Error(`${what}: path ${p}: parent is not a container`);
    return [node as Record<string, unknown> | unknown[], segs[segs.length - 1]!];
  };
  const get = (p: string): unknown => {
    let node: unknown = root;
    for (const s of pointer(p, what)) {
      node = Array.isArray(node) ? node[Number(s)] : (node as Record<string, unknown> | undefined)?.[s];
      if (node === undefined) throw new Error(`${what}: path ${p} does not exist`);
    }
    return node;
  };
  const index = (arr: unknown[], s: string, p: string, allowEnd: boolean): number => {
    if (s === '-' && allowEnd) return arr.length;
    if (!/^(0|[1-9][0-9]*)$/.test(s)) throw new Error(`${what}: path ${p}: "${s}" is not an array index`);
    const i = Number(s);
    if (i > arr.length || (!allowEnd && i === arr.length)) throw new Error(`${what}: path ${p}: index ${i} out of range`);
    return i;
  };
  const add = (p: string, value: unknown) => {
    const segs = pointer(p, what);
    if (segs.length === 0) {
      root = value;
      return;
    }
    const [parent, last] = parentOf(segs, p);
    if (Array.isArray(parent)) parent.splice(index(parent, last, p, true), 0, value);
    else parent[last] = value;
  };
  const remove = (p: string) => {
    const segs = pointer(p, what);
    const [parent, last] = parentOf(segs, p);
    if (Array.isArray(parent)) parent.splice(index(parent, last, p, false), 1);
    else {
      if (!(last in parent)) throw new Error(`${what}: remove ${p}: no such member`);
      delete parent[last];
    }
  };
  for (const op of ops) {
    switch (op.op) {
      case 'add':
        add(op.path, structuredClone(op.value));
        break;
      case 'remove':
        remove(op.path);
        break;
      case 'replace':
        get(op.path);
        remove(op.path);
        add(op.path, structuredClone(op.value));
        break;
      case 'move': {
        const v = get(op.from!);
        remove(op.from!);
        add(op.path, v);
        break;
      }
      case 'copy':
        add(op.path, structuredClone(get(op.from!)));
        break;
      case 'test':
        if (JSON.stringify(get(op.path)) !== JSON.stringify(op.value)) throw new Error(`${what}: test ${op.path} failed`);
        break;
      default:
        throw new Error(`${what}: unknown op ${JSON.stringify(op.op)}`);
    }
  }
  return root;
}

function podSpecOf(o: K8sObject): Record<string, unknown> | undefined {
  const spec = o.spec as Record<string, any> | undefined;
  if (POD_TEMPLATE_KINDS.has(o.kind)) return spec?.template?.spec;
  if (o.kind === 'CronJob') return spec?.jobTemplate?.spec?.template?.spec;
  if (o.kind === 'Pod') return spec;
  return undefined;
}

/** Containers and init containers of a workload's pod template (empty for other kinds). */
export function containersOf(o: K8sObject): Record<string, unknown>[] {
  const ps = podSpecOf(o) as { containers?: Record<string, unknown>[]; initContainers?: Record<string, unknown>[] } | undefined;
  return [...(ps?.initContainers ?? []), ...(ps?.containers ?? [])];
}

function parseImage(image: string): { name: string; tag?: string; digest?: string } {
  let rest = image;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) return { name: rest.slice(0, colon), tag: rest.slice(colon + 1), digest };
  return { name: rest, digest };
}

/** kustomize's ConfigMap hash (api/hasher): sha256 of Go's JSON of {data, kind, name}, first 10 hex digits re-lettered. */
export function configMapHash(cm: K8sObject): string {
  // kustomize looks the name up with the single path element "metadata/name", which finds nothing: it hashes "".
  const m: Record<string, unknown> = { data: cm.data ?? '', kind: 'ConfigMap', name: '' };
  if (cm.binaryData && typeof cm.binaryData === 'object') m.binaryData = cm.binaryData;
  const json = goJson(m);
  const hex = createHash('sha256').update(json).digest('hex');
  const map: Record<string, string> = { '0': 'g', '1': 'h', '3': 'k', a: 'm', e: 't' };
  return [...hex.slice(0, 10)].map((c) => map[c] ?? c).join('');
}

/** JSON as Go's encoding/json writes it: object keys sorted, <, >, & and U+2028/2029 escaped. */
function goJson(v: unknown): string {
  const sort = (x: unknown): unknown =>
    Array.isArray(x) ? x.map(sort) : x && typeof x === 'object' ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, sort((x as Record<string, unknown>)[k])])) : x;
  return JSON.stringify(sort(v)).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function finalise(items: Internal[]): K8sObject[] {
  // Hash suffixes, then references to the renamed ConfigMaps from pod templates of the same namespace.
  const renamed = new Map<string, string>();
  for (const it of items) {
    if (!it.needsHash) continue;
    const old = it.obj.metadata.name;
    it.obj.metadata.name = `${old}-${configMapHash(it.obj)}`;
    renamed.set(`${it.obj.metadata.namespace ?? ''}/${old}`, it.obj.metadata.name);
  }
  for (const it of items) {
    const ps = podSpecOf(it.obj) as Record<string, any> | undefined;
    if (!ps) continue;
    const ns = it.obj.metadata.namespace ?? '';
    const fix = (ref: { name?: string } | undefined) => {
      if (ref?.name && renamed.has(`${ns}/${ref.name}`)) ref.name = renamed.get(`${ns}/${ref.name}`);
    };
    for (const v of ps.volumes ?? []) {
      fix(v.configMap);
      for (const s of v.projected?.sources ?? []) fix(s.configMap);
    }
    for (const c of [...(ps.initContainers ?? []), ...(ps.containers ?? [])]) {
      for (const e of c.envFrom ?? []) fix(e.configMapRef);
      for (const e of c.env ?? []) fix(e.valueFrom?.configMapKeyRef);
    }
  }
  return items.map((it) => it.obj);
}

/** Paths of the files a set of kustomizations names, relative to `root` (for messages). */
export function relativeAll(root: string, files: Iterable<string>): string[] {
  return [...files].map((f) => relative(root, f)).sort();
}
