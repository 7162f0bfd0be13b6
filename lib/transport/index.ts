// The communication layer, in one import: `import { connectToOrchestrator, encodeTensor } from '../lib/transport/index.ts'`.
// See docs/transport.md.
export * from './proto.ts';
export * from './tensor.ts';
export * from './messages.ts';
export { trainBatchDigest } from './batch-digest.ts';
export * from './worker-id-record.ts';
export * from './errors.ts';
export { checkListenAuth, startOrchestratorServer } from './grpc-server.ts';
export type { OrchestratorServer, OrchestratorServerOptions, ServerAuth, ServerTls, WorkerSession } from './grpc-server.ts';
export { backoffDelay, connectToOrchestrator, withReconnect } from './grpc-client.ts';
export type { ClientTls, ConnectOptions, OrchestratorConnection, ReconnectOptions } from './grpc-client.ts';
export { isLoopbackHost, parseHostPort } from './grpc-common.ts';
export { forEachItem } from './queue.ts';
export * from './nats.ts';
export { NatsDisconnectedError } from './nats-disconnect.ts';
export * from './nats-auth.ts';
export * from './store-loss.ts';
export * from './role-tokens.ts';
export * from './cert-identity.ts';
export * from './certificate-expiry.ts';
export { CHECKPOINT_MAX_PAYLOAD, ensureNatsBinary, ensureNatsServer, isReachable, natsServerBinary, spawnNatsServer } from './nats-server.ts';
export type { EnsuredNats, NatsServerProcess, SpawnNatsOptions } from './nats-server.ts';
