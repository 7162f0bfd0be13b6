// Shared pieces of the gRPC server and client: method definition with single serialisation, size checks,
// address parsing, TLS material loading.
import { isIP } from 'node:net';
import type * as grpc from '@grpc/grpc-js';
import { loadProtocol, PROTO_PATH } from './proto.ts';
import { envelopeCodec, type EnvelopeCodec } from './wire-codec.ts';
import { MessageTooLargeError } from './errors.ts';

export const CONNECT_PATH = '/recovery.v1.Orchestrator/Connect';

const PRESERIALIZED = Symbol('preserialized');
/** A message already serialised (and size-checked) by send(); the method's serializer passes it through. */
export interface Preserialized {
  [PRESERIALIZED]: Buffer;
}

type MethodDef = grpc.MethodDefinition<unknown, unknown>;

let method: MethodDef | undefined;
function connectMethod(): MethodDef {
  if (!method) {
    const svc = loadProtocol().recovery.v1.Orchestrator.service as unknown as Record<string, MethodDef>;
    const m = svc['Connect'];
    if (!m) throw new Error('proto/recovery.proto: Orchestrator.Connect is missing');
    method = m;
  }
  return method;
}

/**
 * Which codec turns messages into bytes and back: 'direct' (default; lib/transport/wire-codec.ts, for tasks,
 * results, heartbeats and TrainBatches; proto-loader for Hello) or 'proto-loader' for every message. Both give
 * the same bytes and the same decoded objects (test/transport/wire-codec.test.ts); the load bench runs both.
 */
export type WireCodecName = 'direct' | 'proto-loader';
let codecName: WireCodecName = 'direct';
let codecs: { request: EnvelopeCodec; response: EnvelopeCodec } | undefined;

/** Chooses the codec for the serialisers made from now on (a process-wide switch, for the load bench). */
export function useWireCodec(name: WireCodecName): void {
  if (name !== 'direct' && name !== 'proto-loader') throw new Error(`wire codec must be direct or proto-loader, got ${JSON.stringify(name)}`);
  codecName = name;
}

function codecsOf(): { request: EnvelopeCodec; response: EnvelopeCodec } {
  if (!codecs) {
    const m = connectMethod();
    codecs = {
      request: envelopeCodec(PROTO_PATH, 'recovery.v1.WorkerMessage', { encode: m.requestSerialize, decode: m.requestDeserialize }),
      response: envelopeCodec(PROTO_PATH, 'recovery.v1.OrchestratorMessage', { encode: m.responseSerialize, decode: m.responseDeserialize }),
    };
  }
  return codecs;
}

function serializer(direction: 'request' | 'response'): (v: unknown) => Buffer {
  if (codecName === 'proto-loader') {
    const m = connectMethod();
    return direction === 'request' ? m.requestSerialize : m.responseSerialize;
  }
  const c = codecsOf()[direction];
  return (v) => c.encode(v as object);
}

function deserializer(direction: 'request' | 'response'): (b: Buffer) => unknown {
  if (codecName === 'proto-loader') {
    const m = connectMethod();
    return direction === 'request' ? m.requestDeserialize : m.responseDeserialize;
  }
  const c = codecsOf()[direction];
  return (b) => c.decode(b);
}

/** Service definition whose serialisers accept Preserialized values. */
export function orchestratorServiceDefinition(): grpc.ServiceDefinition {
  const m = connectMethod();
  return {
    Connect: {
      ...m,
      requestSerialize: passThrough(serializer('request')),
      requestDeserialize: deserializer('request'),
      responseSerialize: passThrough(serializer('response')),
      responseDeserialize: deserializer('response'),
    },
  } as unknown as grpc.ServiceDefinition;
}

function passThrough(ser: (v: unknown) => Buffer): (v: unknown) => Buffer {
  return (v) => (v as Preserialized | null)?.[PRESERIALIZED] ?? ser(v);
}

/**
 * Serialises one envelope for sending and refuses it (without touching the stream) if it is larger than
 * maxBytes: gRPC would otherwise kill the whole stream with RESOURCE_EXHAUSTED.
 */
export function preserialize(direction: 'request' | 'response', msg: unknown, kind: string, maxBytes: number): Preserialized {
  const c = current();
  const buf = direction === 'request' ? c.req(msg) : c.res(msg);
  if (buf.length > maxBytes) {
    throw new MessageTooLargeError(`${kind} message is ${buf.length} bytes, over the ${maxBytes}-byte message limit (maxMessageBytes)`);
  }
  return { [PRESERIALIZED]: buf };
}

// The serialisers of the codec in use, made once per codec choice.
let made: { name: WireCodecName; req: (v: unknown) => Buffer; res: (v: unknown) => Buffer; dres: (b: Buffer) => unknown } | undefined;
function current(): NonNullable<typeof made> {
  if (!made || made.name !== codecName) made = { name: codecName, req: serializer('request'), res: serializer('response'), dres: deserializer('response') };
  return made;
}

export function deserializeResponse(buf: Buffer): unknown {
  return current().dres(buf);
}

export function serializeRequest(v: unknown): Buffer {
  return (v as Preserialized | null)?.[PRESERIALIZED] ?? current().req(v);
}

/** Splits 'host:port' / '[v6]:port'. */
export function parseHostPort(address: string, what = 'address'): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(address) ?? /^([^:[\]]+):(\d+)$/.exec(address);
  if (!m) throw new Error(`${what} ${JSON.stringify(address)} must look like host:port (IPv6 as [::1]:port)`);
  const port = Number(m[2]);
  if (port > 65535) throw new Error(`${what} ${JSON.stringify(address)}: port ${port} is out of range`);
  return { host: m[1]!, port };
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (h.startsWith('::ffff:')) return h.slice(7).startsWith('127.');
  return false;
}

/**
 * Keepalive pings on a worker's connection to the orchestrator (docs/reliability.md, "Dead streams"): the only
 * thing that tells a worker its stream died while the link is silent (the orchestrator sends nothing periodic).
 * The timeout must outlast the longest time the worker's event loop is held (a synchronous graph call): an answer
 * read late counts as none.
 */
export const DEFAULT_KEEPALIVE_MS = 5000;
export const DEFAULT_KEEPALIVE_TIMEOUT_MS = 10_000;

/**
 * grpc-js channel options for an HTTP/2 PING every `intervalMs` while a call is open (0: none) and dropping the
 * connection (its calls end with UNAVAILABLE) when one goes unanswered for `timeoutMs`. The orchestrator's grpc-js
 * server answers pings at any rate (it enforces no minimum interval, sends no GOAWAY too_many_pings).
 */
export function keepaliveOptions(intervalMs: number, timeoutMs: number): grpc.ChannelOptions {
  if (!Number.isInteger(intervalMs) || intervalMs < 0) throw new Error(`keepaliveMs must be an integer >= 0 (0: no pings), got ${intervalMs}`);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new Error(`keepaliveTimeoutMs must be a positive integer, got ${timeoutMs}`);
  if (intervalMs === 0) return {};
  return { 'grpc.keepalive_time_ms': intervalMs, 'grpc.keepalive_timeout_ms': timeoutMs };
}

export function messageSizeOptions(maxBytes: number): grpc.ChannelOptions {
  if (!Number.isInteger(maxBytes) || maxBytes <= 0) throw new Error(`maxMessageBytes must be a positive integer, got ${maxBytes}`);
  return { 'grpc.max_receive_message_length': maxBytes, 'grpc.max_send_message_length': maxBytes };
}
