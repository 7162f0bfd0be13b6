// Offline validation of Kubernetes objects.
//
// Core kinds: the `kubernetes-models` package (its validators are compiled from the Kubernetes OpenAPI schemas).
// Those validators check types, formats and required fields but, like the OpenAPI schemas, let unknown fields
// through; the API server (kubectl's default strict field validation) refuses them. So validation runs on a
// Proxy that records every field the validator reads: a field it never read is not in the schema, and is
// reported as unknown (this is how `value: compute,utility` in a YAML flow mapping, which becomes a stray
// `utility: null` key, is caught).
//
// Custom resources (prometheus-operator PodMonitor and PrometheusRule, KEDA ScaledObject, cert-manager Issuer) are not in
// kubernetes-models; they are checked with strict zod schemas transcribed from the CRDs (monitoring.coreos.com/v1
// as of prometheus-operator v0.7x, keda.sh/v1alpha1 as of KEDA 2.1x) for the fields a manifest here may use. A
// field outside that subset is refused: add it here from the CRD when a manifest needs it. Where the
// @kubernetes-models/prometheus-operator or @kubernetes-models/keda packages are installed, objects are also
// validated with them (see test/k8s/manifests.test.ts).
import { z } from 'zod';
import { HorizontalPodAutoscalerBehavior } from 'kubernetes-models/autoscaling/v2';
import type { K8sObject } from './kustomize.ts';

type ModelClass = { prototype: { validate(): void } };

async function modelClass(apiVersion: string, kind: string): Promise<ModelClass | undefined> {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const spec = group ? `kubernetes-models/${group}/${version}` : `kubernetes-models/${version}`;
  try {
    const mod = (await import(spec)) as Record<string, ModelClass>;
    return mod[kind];
  } catch {
    return undefined;
  }
}

/** Runs a kubernetes-models validator on `obj` and returns the paths of the fields it never looked at. */
function validateTracking(validate: (this: unknown) => void, obj: unknown): string[] {
  const read = new WeakMap<object, Set<string>>();
  const proxies = new WeakMap<object, object>();
  const wrap = (v: unknown): unknown => {
    if (!v || typeof v !== 'object') return v;
    let p = proxies.get(v);
    if (!p) {
      read.set(v, new Set());
      p = new Proxy(v, {
        get(target, key, receiver) {
          if (typeof key === 'string') read.get(target)!.add(key);
          return wrap(Reflect.get(target, key, receiver));
        },
      });
      proxies.set(v, p);
    }
    return p;
  };
  validate.call(wrap(obj));
  const unknown: string[] = [];
  const walk = (v: unknown, path: string) => {
    if (!v || typeof v !== 'object') return;
    if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, `${path}[${i}]`));
      return;
    }
    const seen = read.get(v);
    for (const [k, x] of Object.entries(v)) {
      if (seen && !seen.has(k)) unknown.push(path ? `${path}.${k}` : k);
      else walk(x, path ? `${path}.${k}` : k);
    }
  };
  walk(obj, '');
  return unknown;
}

// ---------------------------------------------------------------------------------------------------------
// CRDs

const labelSelector = z.strictObject({
  matchLabels: z.record(z.string(), z.string()).optional(),
  matchExpressions: z.array(z.strictObject({
    key: z.string().min(1),
    operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
    values: z.array(z.string()).optional(),
  })).optional(),
});
const metadata = z.object({
  name: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/).max(253),
  namespace: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
}).strict();
/** prometheus-operator's Duration pattern. */
const duration = z.string().regex(/^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$/, 'must be a Prometheus duration like 30s or 5m');
const relabelConfig = z.strictObject({
  sourceLabels: z.array(z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/)).optional(),
  separator: z.string().optional(),
  targetLabel: z.string().optional(),
  regex: z.string().optional(),
  modulus: z.number().int().optional(),
  replacement: z.string().optional(),
  action: z.enum(['replace', 'Replace', 'keep', 'Keep', 'drop', 'Drop', 'hashmod', 'HashMod', 'labelmap', 'LabelMap', 'labeldrop', 'LabelDrop', 'labelkeep', 'LabelKeep', 'lowercase', 'Lowercase', 'uppercase', 'Uppercase', 'keepequal', 'KeepEqual', 'dropequal', 'DropEqual']).optional(),
});

export const podMonitorSchema = z.strictObject({
  apiVersion: z.literal('monitoring.coreos.com/v1'),
  kind: z.literal('PodMonitor'),
  metadata,
  spec: z.strictObject({
    jobLabel: z.string().optional(),
    podTargetLabels: z.array(z.string()).optional(),
    selector: labelSelector,
    namespaceSelector: z.strictObject({ any: z.boolean().optional(), matchNames: z.array(z.string()).optional() }).optional(),
    sampleLimit: z.number().int().gte(0).optional(),
    podMetricsEndpoints: z.array(z.strictObject({
      port: z.string().optional(),
      path: z.string().optional(),
      scheme: z.enum(['http', 'https']).optional(),
      // prometheus-operator's SafeAuthorization: a key of a Secret in the PodMonitor's namespace (no file)
      authorization: z.strictObject({
        type: z.string().min(1).optional(),
        credentials: z.strictObject({ name: z.string().min(1), key: z.string().min(1), optional: z.boolean().optional() }),
      }).optional(),
      interval: duration.optional(),
      scrapeTimeout: duration.optional(),
      honorLabels: z.boolean().optional(),
      honorTimestamps: z.boolean().optional(),
      relabelings: z.array(relabelConfig).optional(),
      metricRelabelings: z.array(relabelConfig).optional(),
    })).min(1),
  }),
});

const rule = z.strictObject({
  record: z.string().optional(),
  alert: z.string().optional(),
  expr: z.union([z.string().min(1), z.number().int()]),
  for: duration.optional(),
  keep_firing_for: duration.optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
}).refine((r) => (r.record === undefined) !== (r.alert === undefined), 'a rule has exactly one of record, alert');

export const prometheusRuleSchema = z.strictObject({
  apiVersion: z.literal('monitoring.coreos.com/v1'),
  kind: z.literal('PrometheusRule'),
  metadata,
  spec: z.strictObject({
    groups: z.array(z.strictObject({
      name: z.string().min(1),
      interval: duration.optional(),
      limit: z.number().int().optional(),
      partial_response_strategy: z.string().optional(),
      rules: z.array(rule).min(1),
    })).min(1),
  }),
});

/** Metadata keys of KEDA's prometheus scaler (keda.sh docs, scalers/prometheus). Values are strings. */
const PROMETHEUS_TRIGGER_KEYS = ['serverAddress', 'query', 'threshold', 'activationThreshold', 'namespace', 'customHeaders', 'ignoreNullValues', 'queryParameters', 'unsafeSsl', 'timeout', 'authModes'] as const;

export const scaledObjectSchema = z.strictObject({
  apiVersion: z.literal('keda.sh/v1alpha1'),
  kind: z.literal('ScaledObject'),
  metadata,
  spec: z.strictObject({
    scaleTargetRef: z.strictObject({ apiVersion: z.string().optional(), kind: z.string().optional(), name: z.string().min(1), envSourceContainerName: z.string().optional() }),
    pollingInterval: z.number().int().gt(0).optional(),
    cooldownPeriod: z.number().int().gte(0).optional(),
    initialCooldownPeriod: z.number().int().gte(0).optional(),
    idleReplicaCount: z.number().int().gte(0).optional(),
    minReplicaCount: z.number().int().gte(0).optional(),
    maxReplicaCount: z.number().int().gt(0).optional(),
    fallback: z.strictObject({ failureThreshold: z.number().int().gt(0), replicas: z.number().int().gte(0) }).optional(),
    advanced: z.strictObject({
      restoreToOriginalReplicaCount: z.boolean().optional(),
      horizontalPodAutoscalerConfig: z.strictObject({
        name: z.string().optional(),
        behavior: z.record(z.string(), z.unknown()).optional(), // checked with kubernetes-models below
      }).optional(),
    }).optional(),
    triggers: z.array(z.strictObject({
      type: z.string().min(1),
      name: z.string().optional(),
      metricType: z.enum(['AverageValue', 'Value', 'Utilization']).optional(),
      useCachedMetrics: z.boolean().optional(),
      metadata: z.record(z.string(), z.string()),
      authenticationRef: z.strictObject({ name: z.string(), kind: z.string().optional() }).optional(),
    }).superRefine((t, ctx) => {
      if (t.type !== 'prometheus') return;
      for (const k of Object.keys(t.metadata)) {
        if (!(PROMETHEUS_TRIGGER_KEYS as readonly string[]).includes(k)) ctx.addIssue({ code: 'custom', path: ['metadata', k], message: `not a prometheus scaler key (${PROMETHEUS_TRIGGER_KEYS.join(', ')})` });
      }
      for (const k of ['serverAddress', 'query', 'threshold']) {
        if (!(k in t.metadata)) ctx.addIssue({ code: 'custom', path: ['metadata', k], message: 'is required by the prometheus scaler' });
      }
      if ('threshold' in t.metadata && !(Number(t.metadata.threshold) > 0)) ctx.addIssue({ code: 'custom', path: ['metadata', 'threshold'], message: 'must be a positive number' });
    })).min(1),
  }).refine((s) => (s.minReplicaCount ?? 0) <= (s.maxReplicaCount ?? 100), 'minReplicaCount must not exceed maxReplicaCount'),
});

// cert-manager.io/v1 Issuer (cert-manager 1.x CRD), the CA kind only: k8s/components/per-pod-identity
const issuerSchema = z.strictObject({
  apiVersion: z.literal('cert-manager.io/v1'),
  kind: z.literal('Issuer'),
  metadata,
  spec: z.strictObject({
    ca: z.strictObject({
      secretName: z.string().min(1),
      crlDistributionPoints: z.array(z.string()).optional(),
      ocspServers: z.array(z.string()).optional(),
      issuingCertificateURLs: z.array(z.string()).optional(),
    }),
  }),
});

// policy.cert-manager.io/v1alpha1 CertificateRequestPolicy (cert-manager approver-policy v0.27.0's CRD, all of spec):
// k8s/components/approver-policy. Cluster-scoped; `status` is the controller's, not a manifest's.
const validationRules = z.array(z.strictObject({ rule: z.string().min(1), message: z.string().optional() })).optional();
const allowedString = z.strictObject({ value: z.string().optional(), required: z.boolean().optional(), validations: validationRules });
const allowedStringSlice = z.strictObject({ values: z.array(z.string()).optional(), required: z.boolean().optional(), validations: validationRules });
const allowedOid = z.strictObject({ oid: z.string().min(1), values: z.array(z.string()).optional(), required: z.boolean().optional(), validations: validationRules });
/** cert-manager's KeyUsage values (the CRD's enum). */
export const CERT_MANAGER_KEY_USAGES = [
  'signing', 'digital signature', 'content commitment', 'key encipherment', 'key agreement', 'data encipherment', 'cert sign',
  'crl sign', 'encipher only', 'decipher only', 'any', 'server auth', 'client auth', 'code signing', 'email protection', 's/mime',
  'ipsec end system', 'ipsec tunnel', 'ipsec user', 'timestamping', 'ocsp signing', 'microsoft sgc', 'netscape sgc',
] as const;
/** A metav1.Duration as Go's time.ParseDuration reads it (the CRD says string; approver-policy's webhook parses it). */
const goDuration = z.string().regex(/^([0-9]+(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+$/, 'must be a Go duration like 2160h or 90m');
export const certificateRequestPolicySchema = z.strictObject({
  apiVersion: z.literal('policy.cert-manager.io/v1alpha1'),
  kind: z.literal('CertificateRequestPolicy'),
  metadata,
  spec: z.strictObject({
    allowed: z.strictObject({
      commonName: allowedString.optional(),
      dnsNames: allowedStringSlice.optional(),
      ipAddresses: allowedStringSlice.optional(),
      uris: allowedStringSlice.optional(),
      emailAddresses: allowedStringSlice.optional(),
      isCA: z.boolean().optional(),
      usages: z.array(z.enum(CERT_MANAGER_KEY_USAGES)).optional(),
      subject: z.strictObject({
        organizations: allowedStringSlice.optional(),
        countries: allowedStringSlice.optional(),
        organizationalUnits: allowedStringSlice.optional(),
        localities: allowedStringSlice.optional(),
        provinces: allowedStringSlice.optional(),
        streetAddresses: allowedStringSlice.optional(),
        postalCodes: allowedStringSlice.optional(),
        serialNumber: allowedString.optional(),
        otherAttributes: z.array(allowedOid).optional(),
      }).optional(),
      otherNames: z.array(allowedOid).optional(),
    }).optional(),
    constraints: z.strictObject({
      minDuration: goDuration.optional(),
      maxDuration: goDuration.optional(),
      privateKey: z.strictObject({
        algorithm: z.enum(['RSA', 'ECDSA', 'Ed25519']).optional(),
        minSize: z.number().int().optional(),
        maxSize: z.number().int().optional(),
      }).optional(),
    }).optional(),
    plugins: z.record(z.string(), z.strictObject({ values: z.record(z.string(), z.string()).optional() })).optional(),
    selector: z.strictObject({
      issuerRef: z.strictObject({ name: z.string().optional(), kind: z.string().optional(), group: z.string().optional() }).optional(),
      namespace: z.strictObject({
        matchNames: z.array(z.string()).optional(),
        matchLabels: z.record(z.string(), z.string()).optional(),
      }).optional(),
    }).refine((s) => s.issuerRef !== undefined || s.namespace !== undefined, 'at least one of issuerRef, namespace (approver-policy\'s webhook)'),
  }),
});
export type CertificateRequestPolicy = z.infer<typeof certificateRequestPolicySchema>;

const CRD_SCHEMAS: Record<string, z.ZodType> = {
  'cert-manager.io/v1/Issuer': issuerSchema,
  'policy.cert-manager.io/v1alpha1/CertificateRequestPolicy': certificateRequestPolicySchema,
  'monitoring.coreos.com/v1/PodMonitor': podMonitorSchema,
  'monitoring.coreos.com/v1/PrometheusRule': prometheusRuleSchema,
  'keda.sh/v1alpha1/ScaledObject': scaledObjectSchema,
};

/**
 * Validates one object against its API schema. Throws an Error naming the object and every problem. Returns
 * which validator was used ('kubernetes-models' or 'zod-crd').
 */
export async function validateK8sObject(o: K8sObject): Promise<'kubernetes-models' | 'zod-crd'> {
  const id = `${o.kind}/${o.metadata?.name ?? '?'}`;
  const crd = CRD_SCHEMAS[`${o.apiVersion}/${o.kind}`];
  if (crd) {
    const r = crd.safeParse(o);
    if (!r.success) throw new Error(`${id} is invalid: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    if (o.kind === 'ScaledObject') {
      const behavior = (o.spec as any)?.advanced?.horizontalPodAutoscalerConfig?.behavior;
      if (behavior) {
        const unknown = validateTracking(HorizontalPodAutoscalerBehavior.prototype.validate, behavior);
        if (unknown.length) throw new Error(`${id}: unknown fields in spec.advanced.horizontalPodAutoscalerConfig.behavior: ${unknown.join(', ')}`);
      }
    }
    return 'zod-crd';
  }
  const cls = await modelClass(o.apiVersion, o.kind);
  if (!cls) throw new Error(`${id}: no schema for ${o.apiVersion} ${o.kind} (neither kubernetes-models nor a CRD schema in test/k8s/schemas.ts)`);
  let unknown: string[];
  try {
    unknown = validateTracking(cls.prototype.validate, o);
  } catch (e) {
    throw new Error(`${id} (${o.apiVersion}) is invalid: ${(e as Error).message}`);
  }
  if (unknown.length) throw new Error(`${id} (${o.apiVersion}) has fields the API does not know: ${unknown.join(', ')}`);
  return 'kubernetes-models';
}
