import websocket from '@fastify/websocket';
import type { FastifyInstance } from 'fastify';

/** Largest WebSocket message: a console log (2 MiB, base64) fits in one tunnel answer. */
export const maxWebSocketMessage = 4 * 1024 * 1024;

/**
 * WebSockets for the whole app (agent tunnels, consoles), registered once
 * before the routes. At shutdown every socket is cut at once: agents
 * reconnect with backoff, and a close handshake with a stuck peer would
 * hold the shutdown.
 */
export async function registerWebSockets(app: FastifyInstance): Promise<void> {
  await app.register(websocket, {
    options: { maxPayload: maxWebSocketMessage },
    preClose(done) {
      for (const client of this.websocketServer.clients) client.terminate();
      this.websocketServer.close(() => done());
    },
  });
}
