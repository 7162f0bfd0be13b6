// HTTP/2 flow-control windows wide enough for a whole message, both ways (docs/performance-history/pipeline.md, "Round 9: pipe9").
//
// HTTP/2 lets a sender put at most the receiver's window on the wire (65,535 bytes by default, per stream and per
// connection) and then waits for the receiver's WINDOW_UPDATE, which the sender can read only on a turn of its event
// loop. A worker's graph call holds its event loop (onnxruntime-node runs a session synchronously), so a result larger
// than a window (a GRPO group's actions and log-density maps: ~200 KB at 32x32) left the rollout worker one window
// per policy call: it reached the orchestrator, and its score task the reward worker, two or three calls late. With a
// window as large as a message, a result or task goes out in one write.
//
// 16 MiB: the default message limit is 64 MiB (proto.ts), so a larger message still moves in a few windows.
// The client's windows are a public grpc-js option ('grpc-node.flow_control_window'); the server's are not, so
// widenServerWindows sets them on grpc-js's Server internals (its http2 server options, and each new session's
// connection window) and reports false when those internals are not where grpc-js 1.14 keeps them (only the speed
// is lost then; test/transport/flow-window.test.ts fails, so an upgrade that moves them is noticed).
import type * as grpc from '@grpc/grpc-js';
import type * as http2 from 'node:http2';

/** Window per stream and per connection (memory a receiver may be sent ahead of reading it). */
export const FLOW_WINDOW_BYTES = 16 << 20;

/** The client side (a worker's channel): its receive windows, for tasks and TrainBatches. */
export function clientFlowOptions(bytes = FLOW_WINDOW_BYTES): grpc.ChannelOptions {
  return { 'grpc-node.flow_control_window': bytes };
}

interface ServerInternals {
  commonServerOptions?: http2.ServerOptions;
  http2Servers?: Map<http2.Http2Server, unknown>;
}

/**
 * The server side (the orchestrator's receive windows, for results). Call once before bindAsync (the stream window
 * in the SETTINGS every session sends) and once after it (the connection window of each session from then on).
 */
export function widenServerWindows(server: grpc.Server, phase: 'before-bind' | 'after-bind', bytes = FLOW_WINDOW_BYTES): boolean {
  const s = server as unknown as ServerInternals;
  if (phase === 'before-bind') {
    if (typeof s.commonServerOptions !== 'object' || s.commonServerOptions === null) return false;
    s.commonServerOptions.settings = { ...s.commonServerOptions.settings, initialWindowSize: bytes };
    return true;
  }
  if (!(s.http2Servers instanceof Map) || s.http2Servers.size === 0) return false;
  for (const h of s.http2Servers.keys()) {
    h.on('session', (session: http2.ServerHttp2Session) => {
      try {
        session.setLocalWindowSize(bytes);
      } catch {
        // a session already closing: nothing to widen
      }
    });
  }
  return true;
}
