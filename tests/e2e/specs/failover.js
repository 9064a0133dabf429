// A failover TCP load balancer for the cluster spec, loopback only: what a real deployment puts
// in front of several hub nodes (docs/scale-out.md). The widget knows one URL; each new TCP
// connection goes to the first backend, in order, that accepts it, so everything goes to node
// A while it lives and to node B once A refuses connections (a killed process). Bytes are
// forwarded both ways unchanged; when either side closes, so does the other.
import net from 'node:net';

export class FailoverBalancer {
  /** `backends`: ports on 127.0.0.1, in order of preference. */
  constructor(listenPort, backends) {
    this.listenPort = listenPort;
    this.backends = backends;
    this.sockets = new Set();
    /** The backend port of every connection forwarded, in order. */
    this.routed = [];
    this.server = net.createServer((client) => this.accept(client));
  }

  start() {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.listenPort, '127.0.0.1', resolve);
    });
  }

  accept(client) {
    client.setNoDelay(true);
    client.pause();
    this.sockets.add(client);
    client.on('close', () => this.sockets.delete(client));
    client.on('error', () => client.destroy());
    this.connect(client, 0);
  }

  connect(client, index) {
    if (index >= this.backends.length || client.destroyed) {
      client.destroy();
      return;
    }
    const port = this.backends[index];
    const upstream = net.connect(port, '127.0.0.1');
    upstream.once('error', () => {
      upstream.destroy();
      if (!upstream.connectedOnce) this.connect(client, index + 1);
      else client.destroy();
    });
    upstream.once('connect', () => {
      upstream.connectedOnce = true;
      upstream.setNoDelay(true);
      this.routed.push(port);
      this.sockets.add(upstream);
      upstream.on('close', () => { this.sockets.delete(upstream); client.destroy(); });
      client.on('close', () => upstream.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
  }

  stop() {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
