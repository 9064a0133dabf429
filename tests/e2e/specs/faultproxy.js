// A fault-injecting TCP proxy for the fault matrix (issue 13), loopback only. Between the
// browser and the hub it forwards bytes both ways, and on command:
//  - blackHole(): stops forwarding in both directions without closing anything, and accepts new
//    connections that it never forwards either (a dead NAT, a Wi-Fi that lost its uplink);
//  - heal(): forwards again (bytes held during the black hole are dropped, as the network did);
//  - flaky(ms): cuts every connection `ms` after it opened, again and again (a flaky proxy);
//  - steady(): stops cutting.
import net from 'node:net';

export class FaultProxy {
  constructor(listenPort, targetPort) {
    this.listenPort = listenPort;
    this.targetPort = targetPort;
    this.holes = false;
    this.cutAfterMs = 0;
    this.pairs = new Set();
    this.cuts = 0;
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
    const upstream = net.connect(this.targetPort, '127.0.0.1');
    upstream.setNoDelay(true);
    const pair = { client, upstream, timer: null };
    this.pairs.add(pair);
    const end = () => {
      clearTimeout(pair.timer);
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (d) => { if (!this.holes) upstream.write(d); });
    upstream.on('data', (d) => { if (!this.holes) client.write(d); });
    client.on('error', end); upstream.on('error', end);
    client.on('close', end); upstream.on('close', end);
    if (this.cutAfterMs > 0) this.armCut(pair);
  }

  armCut(pair) {
    pair.timer = setTimeout(() => {
      if (!this.pairs.has(pair) || this.cutAfterMs === 0) return;
      this.cuts += 1;
      pair.client.destroy();
      pair.upstream.destroy();
    }, this.cutAfterMs);
  }

  blackHole() { this.holes = true; }
  heal() { this.holes = false; }

  flaky(ms) {
    this.cutAfterMs = ms;
    for (const pair of this.pairs) this.armCut(pair);
  }

  steady() { this.cutAfterMs = 0; }

  async stop() {
    for (const pair of this.pairs) { pair.client.destroy(); pair.upstream.destroy(); }
    await new Promise((resolve) => this.server.close(resolve));
  }
}
