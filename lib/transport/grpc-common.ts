// Shared pieces of the gRPC server and client: method definition with single serialisation, size checks,
// address parsing, TLS material loading.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type * as grpc from '@grpc/grpc-js';
import { loadProtocol } from './proto.ts';

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

/** Service definition whose serialisers accept Preserialized values. */
export function orchestratorServiceDefinition(): grpc.ServiceDefinition {
  const m = connectMethod();
  return {
    Connect: {
      ...m,
      requestSerialize: passThrough(m.requestSerialize),
      responseSerialize: passThrough(m.responseSerialize),
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
  const m = connectMethod();
  const buf = direction === 'request' ? m.requestSerialize(msg) : m.responseSerialize(msg);
  if (buf.length > maxBytes) {
    throw new RangeError(`${kind} message is ${buf.length} bytes, over the ${maxBytes}-byte message limit (maxMessageBytes)`);
  }
  return { [PRESERIALIZED]: buf };
}

export function deserializeResponse(buf: Buffer): unknown {
  return connectMethod().responseDeserialize(buf);
}

export function serializeRequest(v: unknown): Buffer {
  return (v as Preserialized | null)?.[PRESERIALIZED] ?? connectMethod().requestSerialize(v);
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

/** PEM material given inline (starts with -----BEGIN) or as a file path. */
export function loadPem(value: string | Buffer, field: string): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (value.trimStart().startsWith('-----BEGIN')) return Buffer.from(value);
  try {
    return readFileSync(value);
  } catch (e) {
    throw new Error(`${field}: cannot read PEM file ${JSON.stringify(value)}: ${(e as Error).message}`);
  }
}

export function messageSizeOptions(maxBytes: number): grpc.ChannelOptions {
  if (!Number.isInteger(maxBytes) || maxBytes <= 0) throw new Error(`maxMessageBytes must be a positive integer, got ${maxBytes}`);
  return { 'grpc.max_receive_message_length': maxBytes, 'grpc.max_send_message_length': maxBytes };
}
