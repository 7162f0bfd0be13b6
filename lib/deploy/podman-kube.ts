// Rendered Kubernetes manifests -> what `podman kube play` (4.3) can run, changing only what podman cannot run
// (docs/kubernetes.md, "Local deployment check"):
//
//   Job          -> a Pod with restartPolicy Never (kube play refuses a Job alone and skips one among other kinds).
//                   A failed pod is not retried, so the check sees every failure.
//   StatefulSet  -> a Pod (kube play has no StatefulSet); each volumeClaimTemplate -> a PersistentVolumeClaim
//                   (a podman named volume) named as Kubernetes names it, <template>-<statefulset>-0.
//   Service      -> dropped (kube play ignores Services). Pods on a podman network resolve each other by pod
//                   name, so the one workload a Service selects names its pod after the Service: clients dial the
//                   same address as in a cluster. A Service selecting several workloads is refused.
//   Deployment   -> kept (kube play runs one pod, <name>-pod-0, restarting its containers like a ReplicaSet would replace them).
//   container ports -> dropped: podman 4.3 publishes every containerPort on the host (two pods with metrics port
//                   9464 collide); pods reach each other, and the check reaches them, at their own addresses.
//   httpGet probes -> dropped: podman runs them as `curl` inside the container, which the image does not have
//                   (and has no reason to); the check asks /health itself.
//   ServiceAccount, PodDisruptionBudget, NetworkPolicy -> dropped (no API server, no evictions, no policy engine).
//   Images       -> renamed per `images` (the NATS image cannot be pulled here).
//   Secrets      -> added from `secrets` (scripts/k8s-secrets.sh makes them in a cluster), as ConfigMaps: podman 4.3
//                   writes a Secret's data into a secret volume still base64-encoded (a certificate file would hold
//                   "LS0tLS1CRUdJTi..."), so each secret volume becomes a configMap volume with the same items and
//                   mode, of a ConfigMap (same name) holding the decoded values. Files and paths are unchanged.
//
// The result comes in stages: StatefulSets first (the NATS server every role connects to at start), then the rest,
// each stage with the ConfigMaps, Secrets and claims its pods use.
/** A Kubernetes object as rendered (test/k8s/kustomize.ts renders them offline). */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [k: string]: unknown;
}

export interface Change {
  kind: string;
  name: string;
  what: string;
}

export interface PodmanKubeOptions {
  /** Image name (as in the manifests) -> the local image to use instead. */
  images?: Record<string, string>;
  /** Secrets to add, name -> key -> value. */
  secrets?: Record<string, Record<string, string>>;
}

export interface PodmanKube {
  /** Objects per stage, to be played in order (`podman kube play` of each stage's YAML). */
  stages: { name: string; objects: K8sObject[] }[];
  /** Every change made, for the log and docs/kubernetes.md. */
  changes: Change[];
  /** Service name -> the pod that now carries it. */
  serviceToPod: Record<string, string>;
}

type Spec = Record<string, unknown>;
interface Container {
  name: string;
  image?: string;
  livenessProbe?: unknown;
  readinessProbe?: unknown;
  startupProbe?: unknown;
  [k: string]: unknown;
}
interface PodTemplate {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: Spec & { containers: Container[]; initContainers?: Container[]; volumes?: Spec[]; restartPolicy?: string };
}

const DROPPED: Record<string, string> = {
  ServiceAccount: 'no API server: nothing uses the token (automountServiceAccountToken is false anyway)',
  PodDisruptionBudget: 'no evictions',
  NetworkPolicy: 'no policy engine on a podman network (not verified here)',
  PodMonitor: 'no prometheus-operator',
  PrometheusRule: 'no prometheus-operator',
  ScaledObject: 'no KEDA',
  Namespace: 'podman has no namespaces',
};
const KEPT = new Set(['ConfigMap', 'Secret', 'PersistentVolumeClaim', 'Pod', 'Deployment']);

const clone = <T>(v: T): T => structuredClone(v);

function templateOf(o: K8sObject): PodTemplate {
  const t = (o.spec as { template?: PodTemplate } | undefined)?.template;
  if (!t?.spec?.containers) throw new Error(`${o.kind} ${o.metadata.name}: no spec.template.spec.containers`);
  return t;
}

function matches(selector: Record<string, string>, labels: Record<string, string> | undefined): boolean {
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

/** Converts rendered manifests for `podman kube play`; see the header for every rule. */
export function toPodmanKube(objects: readonly K8sObject[], o: PodmanKubeOptions = {}): PodmanKube {
  const changes: Change[] = [];
  const note = (obj: K8sObject, what: string) => changes.push({ kind: obj.kind, name: obj.metadata.name, what });
  const workloads = objects.filter((x) => ['Job', 'StatefulSet', 'Deployment', 'Pod'].includes(x.kind));

  // Services -> the name of the one workload each selects.
  const podName = new Map<K8sObject, string>();
  const serviceToPod: Record<string, string> = {};
  for (const svc of objects.filter((x) => x.kind === 'Service')) {
    const selector = (svc.spec as { selector?: Record<string, string> } | undefined)?.selector;
    if (!selector || Object.keys(selector).length === 0) throw new Error(`Service ${svc.metadata.name}: no selector (podman cannot stand in for it)`);
    const selected = workloads.filter((w) => matches(selector, w.kind === 'Pod' ? w.metadata.labels : templateOf(w).metadata?.labels));
    if (selected.length !== 1) {
      throw new Error(`Service ${svc.metadata.name} selects ${selected.length} workloads (${selected.map((w) => `${w.kind} ${w.metadata.name}`).join(', ') || 'none'}): a pod name can stand in for a Service of exactly one`);
    }
    const w = selected[0]!;
    if (w.kind === 'Deployment') throw new Error(`Service ${svc.metadata.name} selects Deployment ${w.metadata.name}: its pods cannot take the Service's name`);
    if (podName.has(w)) throw new Error(`${w.kind} ${w.metadata.name} is selected by two Services (${podName.get(w)}, ${svc.metadata.name})`);
    podName.set(w, svc.metadata.name);
    serviceToPod[svc.metadata.name] = svc.metadata.name;
    note(svc, `dropped; pods reach it as the pod named ${svc.metadata.name} (${w.kind} ${w.metadata.name})`);
  }

  const out: { obj: K8sObject; stage: number }[] = [];
  const claims: K8sObject[] = [];
  const stripProbes = (owner: K8sObject, spec: PodTemplate['spec']) => {
    for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
      const dropped = (['startupProbe', 'readinessProbe', 'livenessProbe'] as const).filter((p) => c[p] !== undefined && (c[p] as { httpGet?: unknown }).httpGet !== undefined);
      for (const p of dropped) delete c[p];
      if (dropped.length) note(owner, `container ${c.name}: ${dropped.join(', ')} (httpGet) dropped: podman would run them as curl inside the image`);
    }
  };
  const dropPorts = (owner: K8sObject, spec: PodTemplate['spec']) => {
    for (const c of spec.containers) {
      if (c.ports === undefined) continue;
      note(owner, `container ${c.name}: ports ${(c.ports as { containerPort: number }[]).map((p) => p.containerPort).join(', ')} not published on the host (reached at the pod's address)`);
      delete c.ports;
    }
  };
  const renameImages = (owner: K8sObject, spec: PodTemplate['spec']) => {
    for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
      const to = c.image !== undefined ? o.images?.[c.image] : undefined;
      if (to !== undefined) {
        note(owner, `container ${c.name}: image ${c.image} -> ${to}`);
        c.image = to;
      }
    }
  };
  const podFrom = (w: K8sObject, t: PodTemplate, restartPolicy: string | undefined): K8sObject => {
    const name = podName.get(w) ?? w.metadata.name;
    const spec = clone(t.spec);
    if (restartPolicy !== undefined) spec.restartPolicy = restartPolicy;
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        ...(w.metadata.namespace ? { namespace: w.metadata.namespace } : {}),
        labels: { ...(t.metadata?.labels ?? {}) },
        ...(t.metadata?.annotations ? { annotations: { ...t.metadata.annotations } } : {}),
      },
      spec,
    };
  };

  for (const obj of objects) {
    if (obj.kind === 'Service') continue;
    if (DROPPED[obj.kind] !== undefined) {
      note(obj, `dropped: ${DROPPED[obj.kind]}`);
      continue;
    }
    if (obj.kind === 'Job') {
      const pod = podFrom(obj, templateOf(obj), 'Never');
      note(obj, `-> Pod ${pod.metadata.name} with restartPolicy Never (was ${templateOf(obj).spec.restartPolicy ?? 'unset'})`);
      out.push({ obj: pod, stage: 1 });
    } else if (obj.kind === 'StatefulSet') {
      const pod = podFrom(obj, templateOf(obj), undefined);
      const vcts = ((obj.spec as { volumeClaimTemplates?: K8sObject[] }).volumeClaimTemplates ?? []);
      const spec = pod.spec as PodTemplate['spec'];
      for (const vct of vcts) {
        const claimName = `${vct.metadata.name}-${obj.metadata.name}-0`;
        claims.push({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { ...clone(vct.metadata), name: claimName }, spec: clone(vct.spec) });
        spec.volumes = [...(spec.volumes ?? []), { name: vct.metadata.name, persistentVolumeClaim: { claimName } }];
      }
      note(obj, `-> Pod ${pod.metadata.name}${vcts.length ? ` with PersistentVolumeClaim ${vcts.map((v) => `${v.metadata.name}-${obj.metadata.name}-0`).join(', ')}` : ''}`);
      out.push({ obj: pod, stage: 0 });
    } else if (KEPT.has(obj.kind)) {
      if (obj.kind === 'Deployment' || obj.kind === 'Pod') out.push({ obj: clone(obj), stage: 1 });
    } else {
      throw new Error(`${obj.kind} ${obj.metadata.name}: no podman counterpart known (add a rule to lib/deploy/podman-kube.ts)`);
    }
  }
  const secretVolumesAsConfigMaps = (owner: K8sObject, spec: PodTemplate['spec']) => {
    spec.volumes = (spec.volumes ?? []).map((v) => {
      const sec = v.secret as ({ secretName: string } & Record<string, unknown>) | undefined;
      if (!sec) return v;
      const { secretName, ...rest } = sec;
      note(owner, `volume ${String(v.name)}: Secret ${secretName} mounted from a ConfigMap of its decoded data (podman 4.3 writes secret volumes base64-encoded)`);
      const { secret: _, ...others } = v;
      return { ...others, configMap: { name: secretName, ...rest } };
    });
  };
  for (const { obj } of out) {
    const spec = obj.kind === 'Pod' ? (obj.spec as PodTemplate['spec']) : templateOf(obj).spec;
    stripProbes(obj, spec);
    dropPorts(obj, spec);
    renameImages(obj, spec);
    secretVolumesAsConfigMaps(obj, spec);
  }

  // Each stage gets the ConfigMaps, Secrets and claims its pods mount or read, the first time they are needed.
  const configMaps = new Map(objects.filter((x) => x.kind === 'ConfigMap').map((x) => [x.metadata.name, x]));
  const secrets = new Map<string, K8sObject>();
  // The ConfigMaps that stand in for Secrets mounted as volumes (see the header): same name, decoded data.
  const addSecretConfigMap = (name: string, data: Record<string, string>) => {
    if (configMaps.has(name)) throw new Error(`Secret ${name}: a ConfigMap of that name exists too, so it cannot stand in for the Secret in podman`);
    configMaps.set(name, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data });
  };
  for (const [name, data] of Object.entries(o.secrets ?? {})) addSecretConfigMap(name, { ...data });
  for (const s of objects.filter((x) => x.kind === 'Secret')) {
    const data = Object.fromEntries(Object.entries((s.data as Record<string, string> | undefined) ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
    addSecretConfigMap(s.metadata.name, { ...data, ...((s.stringData as Record<string, string> | undefined) ?? {}) });
  }
  for (const [name, data] of Object.entries(o.secrets ?? {})) {
    secrets.set(name, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name },
      type: 'Opaque',
      data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    });
  }
  for (const s of objects.filter((x) => x.kind === 'Secret')) secrets.set(s.metadata.name, clone(s));
  const claimByName = new Map(claims.map((c) => [c.metadata.name, c]));
  for (const c of objects.filter((x) => x.kind === 'PersistentVolumeClaim')) claimByName.set(c.metadata.name, clone(c));
  const placed = new Set<string>();
  const stages: PodmanKube['stages'] = [];
  for (const [stage, name] of [[0, 'stateful'], [1, 'run']] as const) {
    const pods = out.filter((x) => x.stage === stage).map((x) => x.obj);
    if (pods.length === 0) continue;
    const deps: K8sObject[] = [];
    const want = (kind: string, ref: string, from: Map<string, K8sObject>, owner: K8sObject) => {
      const key = `${kind}/${ref}`;
      if (placed.has(key)) return;
      const dep = from.get(ref);
      if (!dep) throw new Error(`${owner.kind} ${owner.metadata.name} uses ${kind} ${ref}, which is neither rendered nor given`);
      placed.add(key);
      deps.push(clone(dep));
    };
    for (const p of pods) {
      const spec = p.kind === 'Pod' ? (p.spec as PodTemplate['spec']) : templateOf(p).spec;
      for (const v of spec.volumes ?? []) {
        const cm = (v.configMap as { name?: string } | undefined)?.name;
        const sec = (v.secret as { secretName?: string } | undefined)?.secretName;
        const pvc = (v.persistentVolumeClaim as { claimName?: string } | undefined)?.claimName;
        if (cm) want('ConfigMap', cm, configMaps, p);
        if (sec) want('Secret', sec, secrets, p);
        if (pvc) want('PersistentVolumeClaim', pvc, claimByName, p);
      }
      for (const c of spec.containers) {
        for (const e of (c.env as { valueFrom?: { configMapKeyRef?: { name: string }; secretKeyRef?: { name: string } } }[] | undefined) ?? []) {
          if (e.valueFrom?.configMapKeyRef) want('ConfigMap', e.valueFrom.configMapKeyRef.name, configMaps, p);
          if (e.valueFrom?.secretKeyRef) want('Secret', e.valueFrom.secretKeyRef.name, secrets, p);
        }
      }
    }
    stages.push({ name, objects: [...deps, ...pods] });
  }
  return { stages, changes, serviceToPod };
}

/** The podman name of the pod a workload runs in: a Pod's own name, `<name>-pod-0` for a Deployment (podman 4.3 runs one replica). */
export function podmanPodName(obj: K8sObject): string {
  if (obj.kind === 'Pod') return obj.metadata.name;
  if (obj.kind === 'Deployment') return `${obj.metadata.name}-pod-0`;
  throw new Error(`${obj.kind} ${obj.metadata.name}: not a Pod or Deployment`);
}
