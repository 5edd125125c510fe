import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server, type Socket } from 'node:net';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { parseSmtpUrl, SmtpError, SmtpSession } from './smtp-client.ts';
import { SmtpPool } from './smtp-pool.ts';

interface Received {
  from: string;
  to: string[];
  data: Buffer;
  secure: boolean;
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

/** A real SMTP server (smtp-server) on a free loopback port; `opts` override its behaviour. */
async function server(opts: Partial<SMTPServerOptions> = {}) {
  const received: Received[] = [];
  const s = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    size: 1024 * 1024,
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push({ from: (session.envelope.mailFrom as { address: string }).address, to: session.envelope.rcptTo.map((r) => r.address), data: Buffer.concat(chunks), secure: session.secure });
        cb(null, `Ok: queued as ${received.length}`);
      });
    },
    ...opts,
  });
  s.on('error', () => {});
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.server.address() as { port: number }).port;
  closers.push(() => new Promise<void>((r) => s.close(() => r())));
  return { port, received, url: `smtp://127.0.0.1:${port}` };
}

/** A raw TCP server scripted line by line, for what smtp-server will not do. */
async function rawServer(onConnect: (socket: Socket) => void) {
  const sockets = new Set<Socket>();
  const s: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    onConnect(socket);
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  closers.push(async () => {
    for (const x of sockets) x.destroy();
    await new Promise<void>((r) => s.close(() => r()));
  });
  return `smtp://127.0.0.1:${(s.address() as { port: number }).port}`;
}

/** A scripted server with PIPELINING that keeps what arrives in each read, in `reads`. */
function pipeliningServer(reads: string[]) {
  return rawServer((socket) => {
    let buffer = '';
    let inData = false;
    socket.write('220 raw ESMTP\r\n');
    socket.on('data', (chunk: Buffer) => {
      reads.push(chunk.toString('latin1'));
      buffer += chunk.toString('latin1');
      for (;;) {
        if (inData) {
          const end = buffer.indexOf('\r\n.\r\n');
          if (end === -1) return;
          buffer = buffer.slice(end + 5);
          inData = false;
          socket.write('250 queued\r\n');
          continue;
        }
        const nl = buffer.indexOf('\r\n');
        if (nl === -1) return;
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 2);
        if (line.startsWith('EHLO')) socket.write('250-raw\r\n250 PIPELINING\r\n');
        else if (line === 'DATA') {
          inData = true;
          socket.write('354 go on\r\n');
        } else if (line === 'QUIT') socket.end('221 bye\r\n');
        else socket.write('250 ok\r\n');
      }
    });
  });
}

const MESSAGE = Buffer.from('From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nHello\r\n');
const fast = { connectMs: 2000, greetingMs: 2000, socketMs: 2000 };

describe('SMTP session', () => {
  it('sends with the envelope and DATA pipelined, and reuses the session', async () => {
    const srv = await server();
    const session = await SmtpSession.open(parseSmtpUrl(srv.url), fast);
    expect(session.features.has('PIPELINING')).toBe(true);
    expect(await session.send('bounce+1@example.org', 'b@example.org', MESSAGE, { dataSafe: true })).toMatch(/^250 .*queued as 1/);
    expect(await session.send('bounce+2@example.org', 'c@example.org', MESSAGE)).toMatch(/^250 .*queued as 2/);
    await session.quit();
    expect(srv.received.map((r) => [r.from, r.to])).toEqual([
      ['bounce+1@example.org', ['b@example.org']],
      ['bounce+2@example.org', ['c@example.org']],
    ]);
    expect(srv.received[0]!.data.toString()).toBe(MESSAGE.toString());
  });

  it('stuffs dots and repairs bare line ends of a message that needs it', async () => {
    const srv = await server();
    const session = await SmtpSession.open(parseSmtpUrl(srv.url), fast);
    await session.send('a@example.org', 'b@example.org', Buffer.from('Subject: x\n\n.\r\n..two\rlast'));
    await session.quit();
    expect(srv.received[0]!.data.toString()).toBe('Subject: x\r\n\r\n.\r\n..two\r\nlast\r\n');
  });

  it('reads a refused recipient as an envelope error with the reply, and stays usable', async () => {
    const srv = await server({
      onRcptTo(address, _s, cb) {
        if (address.address.startsWith('nobody')) return cb(Object.assign(new Error('5.1.1 no such user'), { responseCode: 550 }));
        cb();
      },
    });
    const session = await SmtpSession.open(parseSmtpUrl(srv.url), fast);
    const e = (await session.send('a@example.org', 'nobody@example.org', MESSAGE).catch((x) => x)) as SmtpError;
    expect(e).toBeInstanceOf(SmtpError);
    expect(e).toMatchObject({ code: 'EENVELOPE', command: 'RCPT TO', responseCode: 550 });
    expect(e.response).toMatch(/^550 5\.1\.1 no such user/);
    expect(session.alive).toBe(true);
    expect(await session.send('a@example.org', 'b@example.org', MESSAGE)).toMatch(/^250/);
    await session.quit();
    expect(srv.received.map((r) => r.to)).toEqual([['b@example.org']]);
  });

  it("pipelines the next message's envelope behind the data of the one before, in the same write", async () => {
    const reads: string[] = [];
    const url = await pipeliningServer(reads);
    const session = await SmtpSession.open(parseSmtpUrl(url), fast);
    const replies = await Promise.all([1, 2, 3].map((i) => session.send('a@example.org', `r${i}@example.org`, MESSAGE, { dataSafe: true })));
    await session.quit();
    expect(replies).toEqual(['250 queued', '250 queued', '250 queued']);
    const joined = reads.filter((r) => /\r\n\.\r\nMAIL FROM:<a@example\.org>\r\nRCPT TO:<r\d@example\.org>\r\nDATA\r\n$/.test(r));
    expect(joined.map((r) => /RCPT TO:<(r\d)/.exec(r)![1])).toEqual(['r2', 'r3']);
  });

  it('keeps overlapping sends apart: a refused one does not take the next with it; without PIPELINING they wait their turn', async () => {
    const refuse = {
      onRcptTo(address: { address: string }, _s: unknown, cb: (e?: Error) => void) {
        if (address.address.startsWith('nobody')) return cb(Object.assign(new Error('5.1.1 no such user'), { responseCode: 550 }));
        cb();
      },
    };
    for (const opts of [refuse, { ...refuse, hidePIPELINING: true }]) {
      const srv = await server(opts as Partial<SMTPServerOptions>);
      const session = await SmtpSession.open(parseSmtpUrl(srv.url), fast);
      expect(session.features.has('PIPELINING')).toBe(!('hidePIPELINING' in opts));
      const results = await Promise.allSettled(['b', 'nobody', 'c', 'd'].map((who) => session.send('a@example.org', `${who}@example.org`, MESSAGE)));
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'EENVELOPE', command: 'RCPT TO', responseCode: 550 });
      expect(session.alive).toBe(true);
      await session.quit();
      expect(srv.received.map((r) => r.to[0])).toEqual(['b@example.org', 'c@example.org', 'd@example.org']);
      expect(srv.received.every((r) => r.data.toString() === MESSAGE.toString())).toBe(true);
    }
  });

  it('fails a send waiting behind one whose connection dropped as unsent, so that it can go again elsewhere', async () => {
    const url = await rawServer((socket) => {
      let envelopes = 0;
      socket.write('220 raw ESMTP\r\n');
      socket.on('data', (chunk: Buffer) => {
        const text = chunk.toString('latin1');
        if (text.startsWith('EHLO')) socket.write('250-raw\r\n250 PIPELINING\r\n');
        else if (envelopes++ === 0) socket.write('250 ok\r\n250 ok\r\n354 go on\r\n');
        else socket.destroy(); // the first message's data, and the second's envelope
      });
    });
    const session = await SmtpSession.open(parseSmtpUrl(url), fast);
    const [first, second] = await Promise.allSettled([session.send('a@example.org', 'b@example.org', MESSAGE), session.send('a@example.org', 'c@example.org', MESSAGE)]);
    expect((first as PromiseRejectedResult).reason).toMatchObject({ code: 'ECONNECTION', unsent: false });
    expect((second as PromiseRejectedResult).reason).toMatchObject({ code: 'ECONNECTION', unsent: true });
  });

  it('reads a refusal after DATA as a message error with its code', async () => {
    const srv = await server({
      onData(stream, _s, cb) {
        stream.resume();
        stream.on('end', () => cb(Object.assign(new Error('4.7.1 try again later'), { responseCode: 451 })));
      },
    });
    const session = await SmtpSession.open(parseSmtpUrl(srv.url), fast);
    await expect(session.send('a@example.org', 'b@example.org', MESSAGE)).rejects.toMatchObject({ code: 'EMESSAGE', command: 'DATA', responseCode: 451 });
    await session.quit();
  });

  it('upgrades with STARTTLS when offered (certificate check off in the URL), and logs in', async () => {
    const srv = await server({
      disabledCommands: [],
      authMethods: ['PLAIN', 'LOGIN'],
      authOptional: false,
      onAuth(auth, _s, cb) {
        if (auth.username === 'u@x' && auth.password === 'p:w') return cb(null, { user: 'u' });
        cb(Object.assign(new Error('5.7.8 bad credentials'), { responseCode: 535 }));
      },
    });
    const good = await SmtpSession.open(parseSmtpUrl(`smtp://u%40x:p%3Aw@127.0.0.1:${srv.port}?tls.rejectUnauthorized=false`), fast);
    await good.send('a@example.org', 'b@example.org', MESSAGE);
    await good.quit();
    expect(srv.received[0]!.secure).toBe(true);
    await expect(SmtpSession.open(parseSmtpUrl(`smtp://u%40x:wrong@127.0.0.1:${srv.port}?tls.rejectUnauthorized=false`), fast)).rejects.toMatchObject({ code: 'EAUTH', responseCode: 535 });
    // the server's certificate is self-signed: refused unless the URL says otherwise
    await expect(SmtpSession.open(parseSmtpUrl(`smtp://127.0.0.1:${srv.port}`), fast)).rejects.toMatchObject({ code: 'ETLS' });
  });

  it('gives up on a silent server after the socket timeout, and on a 421 at once', async () => {
    const silent = await rawServer(() => {});
    const t0 = Date.now();
    await expect(SmtpSession.open(parseSmtpUrl(silent), { ...fast, greetingMs: 300 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect(Date.now() - t0).toBeLessThan(1500);
    const closing = await rawServer((s) => s.end('421 4.3.2 shutting down\r\n'));
    await expect(SmtpSession.open(parseSmtpUrl(closing), fast)).rejects.toMatchObject({ responseCode: 421 });
  });

  it('reports a connection dropped in the middle of DATA as a connection error, nothing marked unsent', async () => {
    const url = await rawServer((s) => {
      s.write('220 hi\r\n');
      s.on('data', (d) => {
        const t = d.toString();
        if (t.startsWith('EHLO')) s.write('250-hi\r\n250 PIPELINING\r\n');
        else if (t.startsWith('MAIL')) s.write('250 ok\r\n250 ok\r\n354 go\r\n');
        else s.destroy();
      });
    });
    const session = await SmtpSession.open(parseSmtpUrl(url), fast);
    const e = (await session.send('a@example.org', 'b@example.org', MESSAGE).catch((x) => x)) as SmtpError;
    expect(e).toMatchObject({ code: 'ECONNECTION', unsent: false });
    expect(e.responseCode).toBeUndefined();
    expect(session.alive).toBe(false);
  });

  it('reads replies however the server cuts them: one byte at a time, several in one write, bare LF', async () => {
    const trickle = (s: Socket, text: string) => {
      for (const ch of text) s.write(ch);
    };
    const url = await rawServer((s) => {
      trickle(s, '220 hi\r\n');
      s.on('data', (d) => {
        const t = d.toString();
        if (t.startsWith('EHLO')) trickle(s, '250-hi\n250-SIZE 1000000\r\n250 PIPELINING\r\n');
        else if (t.startsWith('MAIL')) trickle(s, '250 ok\r\n250 ok\r\n354 go\r\n');
        else if (t.endsWith('.\r\n')) trickle(s, '250-queued\r\n250 as 42\r\n');
      });
    });
    const session = await SmtpSession.open(parseSmtpUrl(url), fast);
    expect(session.features.has('PIPELINING')).toBe(true);
    expect(session.maxSize).toBe(1000000);
    await expect(session.send('a@example.org', 'b@example.org', MESSAGE)).resolves.toBe('250-queued 250 as 42');
    session.destroy(new SmtpError('done', 'ECONNECTION', 'QUIT'));
  });

  it('ends the session on a reply line that is not one', async () => {
    const url = await rawServer((s) => s.write('220 hi\r\n25x nope\r\n'));
    await expect(SmtpSession.open(parseSmtpUrl(url), fast)).rejects.toMatchObject({ code: 'EPROTOCOL' });
  });

  it('refuses an internationalised address without SMTPUTF8, and a message over the SIZE the server states', async () => {
    const srv = await server({ size: 100, hideSMTPUTF8: true } as Partial<SMTPServerOptions>);
    const session = await SmtpSession.open(parseSmtpUrl(srv.url), fast);
    await expect(session.send('a@example.org', 'zoë@example.org', MESSAGE)).rejects.toMatchObject({ code: 'EENVELOPE' });
    await expect(session.send('a@example.org', 'b@example.org', Buffer.alloc(200, 65))).rejects.toMatchObject({ code: 'EMESSAGE' });
    expect(session.alive).toBe(true);
    await session.quit();
  });
});

describe('SMTP pool', () => {
  it('keeps at most its number of sessions, and reuses them', async () => {
    let connections = 0;
    const srv = await server({ onConnect: (_s, cb) => (connections++, cb()) });
    const pool = new SmtpPool(parseSmtpUrl(srv.url), { maxConnections: 3, timeouts: fast });
    await Promise.all(Array.from({ length: 30 }, (_, i) => pool.send('a@example.org', `r${i}@example.org`, MESSAGE)));
    await pool.close();
    expect(srv.received).toHaveLength(30);
    expect(connections).toBeLessThanOrEqual(3);
  });

  it('puts two messages on a session before it opens more than it needs, never more than maxConnections', async () => {
    let connections = 0;
    const srv = await server({ onConnect: (_s, cb) => (connections++, cb()) });
    const pool = new SmtpPool(parseSmtpUrl(srv.url), { maxConnections: 2, timeouts: fast });
    // Four at once: two sessions with two messages each.
    await Promise.all(Array.from({ length: 4 }, (_, i) => pool.send('a@example.org', `r${i}@example.org`, MESSAGE)));
    expect(connections).toBe(2);
    await Promise.all(Array.from({ length: 40 }, (_, i) => pool.send('a@example.org', `s${i}@example.org`, MESSAGE)));
    await pool.close();
    expect(connections).toBe(2);
    expect(srv.received).toHaveLength(44);
  });

  it('gives a sender that queued while the only session was opening the second place on it', async () => {
    const reads: string[] = [];
    const pool = new SmtpPool(parseSmtpUrl(await pipeliningServer(reads)), { maxConnections: 1, timeouts: fast });
    await Promise.all([1, 2].map((i) => pool.send('a@example.org', `r${i}@example.org`, MESSAGE, { dataSafe: true })));
    await pool.close();
    expect(reads.some((r) => /\r\n\.\r\nMAIL FROM:<a@example\.org>\r\nRCPT TO:<r2@example\.org>/.test(r))).toBe(true);
  });

  it('sends again on a fresh session when an idle one turns out closed before the server said 354', async () => {
    const srv = await server({ socketTimeout: 200 } as Partial<SMTPServerOptions>);
    const pool = new SmtpPool(parseSmtpUrl(srv.url), { maxConnections: 1, timeouts: fast, idleMs: 60_000 });
    await pool.send('a@example.org', 'first@example.org', MESSAGE);
    await new Promise((r) => setTimeout(r, 600)); // the server drops the idle session
    expect(await pool.send('a@example.org', 'second@example.org', MESSAGE)).toMatch(/^250/);
    await pool.close();
    expect(srv.received.map((r) => r.to[0])).toEqual(['first@example.org', 'second@example.org']);
  });

  it('replaces a session after maxMessages', async () => {
    let connections = 0;
    const srv = await server({ onConnect: (_s, cb) => (connections++, cb()) });
    const pool = new SmtpPool(parseSmtpUrl(srv.url), { maxConnections: 1, maxMessages: 2, timeouts: fast });
    for (let i = 0; i < 5; i++) await pool.send('a@example.org', `r${i}@example.org`, MESSAGE);
    await pool.close();
    expect(connections).toBe(3);
  });
});

describe('parseSmtpUrl', () => {
  it("reads the relay, its credentials and nodemailer's query options", () => {
    expect(parseSmtpUrl('smtps://me%40x.org:s%3Acret@relay.example.org?tls.rejectUnauthorized=false&socketTimeout=5000&greetingTimeout=700')).toMatchObject({
      host: 'relay.example.org',
      port: 465,
      secure: true,
      user: 'me@x.org',
      pass: 's:cret',
      rejectUnauthorized: false,
      timeouts: { socketMs: 5000, greetingMs: 700 },
    });
    expect(parseSmtpUrl('smtp://relay.example.org:2525')).toMatchObject({ port: 2525, secure: false, rejectUnauthorized: true, user: undefined });
  });
});
