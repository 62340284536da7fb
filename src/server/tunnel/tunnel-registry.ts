import type { WebSocket } from 'ws';
import { ApiError } from '../../api/errors.ts';
import type { Logger } from '../../base/logger.ts';
import { NodeTunnel } from './node-tunnel.ts';

/**
 * The agents connected to this server, one tunnel per node. A node that
 * connects again replaces its old tunnel (the old one was half-dead, or a
 * restarted agent); nothing else may stand in for a node.
 */
export class TunnelRegistry {
  private readonly tunnels = new Map<string, NodeTunnel>();

  constructor(private readonly o: { logger: Logger; timeoutMs?: number }) {}

  /** Takes over an agent's WebSocket as the tunnel of `node`. */
  attach(node: string, ws: WebSocket): NodeTunnel {
    this.tunnels.get(node)?.close(4000, 'replaced by a newer connection of the same node');
    const tunnel = new NodeTunnel(ws, { node, logger: this.o.logger, ...(this.o.timeoutMs ? { timeoutMs: this.o.timeoutMs } : {}) });
    this.tunnels.set(node, tunnel);
    ws.on('close', () => {
      if (this.tunnels.get(node) === tunnel) this.tunnels.delete(node);
    });
    this.o.logger.info({ node }, 'agent tunnel connected');
    return tunnel;
  }

  /** The tunnel of a node, or `unavailable` saying the node's agent is away. */
  get(node: string, what: string): NodeTunnel {
    const t = this.tunnels.get(node);
    if (!t) throw new ApiError('unavailable', `Cannot ${what}: the agent of node "${node}" is not connected`);
    return t;
  }

  /** Whether a node's agent is connected now. */
  connected(node: string): boolean {
    return this.tunnels.has(node);
  }

  /** Drops every tunnel (server shutdown); agents reconnect to the next server. */
  closeAll(): void {
    for (const t of this.tunnels.values()) t.close(1001, 'the server is shutting down');
    this.tunnels.clear();
  }
}
