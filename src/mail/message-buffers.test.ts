import { afterAll, describe, expect, it } from 'vitest';
import { SMTPServer } from 'smtp-server';
import { simpleParser } from 'mailparser';
import { composeMessage } from './compose.ts';
import { MessageBuffers } from './message-buffers.ts';
import { relayTransport } from './relay-transport.ts';

describe('message buffers', () => {
  it('hands a buffer out again only once given back, and only once', () => {
    const pool = new MessageBuffers(2);
    const a = pool.take(30_000);
    expect(a.length).toBe(30_000);
    const b = pool.take(30_000);
    expect(b.buffer).not.toBe(a.buffer);
    pool.give(a);
    pool.give(a); // twice: ignored
    pool.give(Buffer.alloc(30_000)); // not one of ours: ignored
    expect(pool.idle).toBe(1);
    const c = pool.take(20_000);
    expect(c.buffer).toBe(a.buffer);
    expect(c.length).toBe(20_000);
    // Too small for what is asked: a new one.
    pool.give(c);
    expect(pool.take(100_000).buffer).not.toBe(a.buffer);
    // Kept up to its bound.
    for (const x of [pool.take(10), pool.take(10), pool.take(10)]) pool.give(x);
    expect(pool.idle).toBe(2);
  });

  describe('with the SMTP relay', () => {
    const received = new Map<string, Buffer>();
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData(stream, session, cb) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          received.set(session.envelope.rcptTo[0]!.address, Buffer.concat(chunks));
          cb(null);
        });
      },
    });
    afterAll(() => new Promise<void>((r) => server.close(() => r())));

    it('every recipient gets their own message while the bytes of sent ones are reused', async () => {
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const port = (server.server.address() as { port: number }).port;
      const transport = relayTransport({ url: `smtp://127.0.0.1:${port}`, maxConnections: 3 });
      const pool = new MessageBuffers();
      const taken = new Set<ArrayBuffer>();
      const alloc = (n: number) => {
        const b = pool.take(n);
        taken.add(b.buffer as ArrayBuffer);
        return b;
      };
      const N = 300;
      let next = 0;
      await Promise.all(
        Array.from({ length: 12 }, async () => {
          while (next < N) {
            const i = next++;
            const deliveryId = `0b8e4a4e-3f1c-4a8c-9d2c-${String(i).padStart(12, '0')}`;
            const composed = composeMessage({
              deliveryId,
              returnPath: `bounce+${deliveryId}@bounces.example.org`,
              from: { name: 'News', address: 'news@example.org' },
              to: { name: `Person ${i}`, address: `p${i}@example.com` },
              subject: `For person ${i}`,
              html: `<p>${`Hello person ${i}. `.repeat(200 + (i % 7) * 100)}</p>`,
              text: `Hello person ${i}`,
              date: new Date(),
              bounceDomain: 'bounces.example.org',
              alloc,
            });
            await transport.send({ orgId: 'o', messageId: 'm', deliveryId, subject: `For person ${i}`, composed });
            pool.give(composed.raw);
          }
        }),
      );
      await transport.close();
      expect(received.size).toBe(N);
      for (let i = 0; i < N; i++) {
        const m = await simpleParser(received.get(`p${i}@example.com`)!);
        expect(m.subject).toBe(`For person ${i}`);
        expect(m.html).toBe(`<p>${`Hello person ${i}. `.repeat(200 + (i % 7) * 100)}</p>`);
      }
      // At most the messages in flight at once had buffers of their own.
      expect(taken.size).toBeLessThan(40);
    });
  });
});
