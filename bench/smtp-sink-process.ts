// An SMTP sink in a process of its own (the fallback of bench/triggered.ts when postfix's smtp-sink
// cannot be fetched): accepts every message, keeps nothing, prints "listening <port>" once ready.
//   node --import tsx bench/smtp-sink-process.ts PORT
import { SMTPServer } from 'smtp-server';

const port = Number(process.argv[2] ?? 0);
let received = 0;
const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS', 'AUTH'],
  logger: false,
  maxClients: 1000,
  size: 10 * 1024 * 1024,
  onData(stream, _session, cb) {
    stream.on('data', () => {});
    stream.on('end', () => {
      received++;
      cb(null, `Ok: queued as ${received}`);
    });
  },
});
server.on('error', (e) => process.stderr.write(`smtp sink: ${String(e)}\n`));
server.listen(port, '127.0.0.1', () => {
  const actual = (server.server.address() as { port: number }).port;
  process.stdout.write(`listening ${actual}\n`);
});
const stop = () => server.close(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
