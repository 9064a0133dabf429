// A byte pipe across network namespaces (scripts/sip-rig start --forward PORT): TCP cannot cross
// from the host's loopback into the rig's namespace, a unix socket (a file) can.
//   node bridge.mjs unix-to-tcp SOCKET PORT   (outside) SOCKET -> 127.0.0.1:PORT
//   node bridge.mjs tcp-to-unix PORT SOCKET   (inside)  127.0.0.1:PORT -> SOCKET
import net from 'node:net';
import { rmSync } from 'node:fs';

const [mode, from, to] = process.argv.slice(2);
const pipe = (client, connectTo) => {
  const upstream = net.connect(connectTo);
  client.pipe(upstream).pipe(client);
  const close = () => { client.destroy(); upstream.destroy(); };
  client.on('error', close);
  upstream.on('error', close);
};
let server;
if (mode === 'unix-to-tcp') {
  rmSync(from, { force: true });
  server = net.createServer((c) => pipe(c, { host: '127.0.0.1', port: Number(to) })).listen(from);
} else if (mode === 'tcp-to-unix') {
  server = net.createServer((c) => pipe(c, { path: to })).listen(Number(from), '127.0.0.1');
} else {
  console.error('usage: bridge.mjs unix-to-tcp SOCKET PORT | tcp-to-unix PORT SOCKET');
  process.exit(2);
}
server.on('error', (e) => { console.error(`bridge: ${e.message}`); process.exit(1); });
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
