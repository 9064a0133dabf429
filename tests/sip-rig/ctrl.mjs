// baresip's ctrl_tcp (netstring-framed JSON) as JSON lines, for test drivers that cannot reach the
// rig's namespace themselves: run it inside (scripts/sip-rig exec node ctrl.mjs PORT), write one
// command object per line to stdin ({"command": "dial", "params": "sip:alice@127.0.0.1"}), read every
// response and event as one JSON object per line on stdout. baresip sends events (CALL_DTMF_START,
// CALL_CLOSED, ...) only to its most recent client: keep this one connection open.
import net from 'node:net';
import readline from 'node:readline';

const port = Number(process.argv[2] ?? 4444);
const socket = net.connect({ host: '127.0.0.1', port });
let buffer = Buffer.alloc(0);
socket.on('connect', () => process.stdout.write(`${JSON.stringify({ connected: true })}\n`));
socket.on('data', (chunk) => {
  buffer = Buffer.concat([buffer, chunk]);
  for (;;) {
    const colon = buffer.indexOf(0x3a);
    if (colon < 0) return;
    const length = Number(buffer.subarray(0, colon).toString());
    if (buffer.length < colon + 1 + length + 1) return;
    const body = buffer.subarray(colon + 1, colon + 1 + length).toString();
    buffer = buffer.subarray(colon + 1 + length + 1);
    process.stdout.write(`${body.replace(/\n/g, '\\n')}\n`);
  }
});
socket.on('error', (e) => { process.stderr.write(`ctrl: ${e.message}\n`); process.exit(1); });
socket.on('close', () => process.exit(0));
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (!line.trim()) return;
  const json = Buffer.from(JSON.stringify(JSON.parse(line)));
  socket.write(`${json.length}:${json},`);
});
process.stdin.on('end', () => socket.end());
