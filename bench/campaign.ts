// Campaign benchmark: a consent-filtered marketing campaign to N contacts (default 1,000,000), on
// PostgreSQL, delivered by one real `envoi worker` process (worker + campaign scheduler) to postfix's
// smtp-sink. Measures the resolution (campaign start -> every delivery row written, status leaves
// 'resolving'), the end-to-end send rate (first to last sent_at), the policy counts per rule against the
// seeded expectation (exact, or the bench fails), the worker's peak memory, and CPU per process. The
// baseline of the same run is postfix's smtp-source sending messages of the same size into the same sink
// (before and after the campaign): the engine's rate is given as a fraction of that SMTP limit.
//
// Seed (set-based SQL, deterministic from the contact number i): 70% with marketing consent, 5% on the
// exclusion list, 2% hard-bounced (suppressions). Consent is seeded by setting the derived column
// contacts.marketing_authorized_at directly, which is all the send-time policy reads: real
// consent_records cannot be inserted set-based (each record's hash covers its predecessor's) and
// appending 700,000 through the service would dominate the bench.
//
//   npm run bench -- campaign                     (1,000,000 contacts)
//   BENCH_CONTACTS=50000 npm run bench -- campaign
//   BENCH_CONCURRENCY=n          the worker's ENVOI_WORKER_CONCURRENCY (default: the worker's own, 10)
//   BENCH_SOURCE_MESSAGES=20000  messages of each smtp-source baseline run
//   BENCH_TIMEOUT_SECONDS=7200   give up waiting for the campaign to complete
//   BENCH_PROFILE=/dir           V8 CPU profile of the worker (written when it stops)
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres (the admin URL; a fresh database is created and dropped)
import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { loadConfig } from '../src/platform/config.ts';
import { openPostgres, type Database } from '../src/platform/database.ts';
import { createEnvoi, type Envoi } from '../src/app.ts';
import * as orgs from '../src/organisations/service.ts';
import * as audience from '../src/audience/service.ts';
import { createView } from '../src/audience/grid-service.ts';
import { createTemplate, contactData } from '../src/mail/template-service.ts';
import { createCampaign } from '../src/campaigns/service.ts';
import { compileTemplate, render } from '../src/mail/render.ts';
import { buildRaw, composeMessage, unsubscribeTargets } from '../src/mail/compose.ts';
import { trackingFor } from '../src/mail/tracking-tokens.ts';
import { RULE_ORDER, type RuleCode } from '../src/consent/rules.ts';
import {
  alive,
  assertAlive,
  CLK_TCK,
  machineTicks,
  POSTFIX_TOOLS,
  postgresBackends,
  startChild,
  startPostfixSink,
  statusKb,
  stopChild,
  ticksOf,
  until,
  type Child,
} from './processes.ts';
import { fmt, printTable, writeResults, type Row } from './support.ts';

const env = process.env;
const int = (name: string, fallback: number, min = 1) => {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min}, got "${raw}"`);
  return n;
};

// ---- the seed: who is who, from the contact number i (0 <= i < N), in SQL and in JS alike ----

const SEED = {
  consent: { sql: 'i % 10 < 7', js: (i: number) => i % 10 < 7, share: '70%' },
  excluded: { sql: 'i % 20 = 1', js: (i: number) => i % 20 === 1, share: '5%' },
  hardBounced: { sql: 'i % 50 = 3', js: (i: number) => i % 50 === 3, share: '2%' },
};
const EMAIL_SQL = `'person' || i || '@example' || (i % 97) || '.com'`;
const FIRST = ['Ada', 'Grace', 'Alan', 'Linus', 'Margaret', 'Tim', 'Barbara', 'Ken', 'Frances', 'Dennis', 'Hedy', 'John', 'Radia', 'Edsger', 'Karen', 'Donald'];
const LAST = ['Lovelace', 'Hopper', 'Turing', 'Torvalds', 'Hamilton', 'Berners-Lee', 'Liskov', 'Thompson', 'Allen', 'Ritchie', 'Lamarr', 'McCarthy', 'Perlman', 'Dijkstra', 'Jones', 'Knuth'];
const COMPANY = ['Initech', 'Globex', 'Umbrella', 'Hooli', 'Vandelay', 'Acme', 'Stark', 'Wayne', 'Tyrell', 'Cyberdyne'];
const sqlArray = (a: string[]) => `ARRAY[${a.map((s) => `'${s.replace(/'/g, "''")}'`).join(',')}]`;

/** What the policy must decide for each seeded contact, in the policy's own rule order. */
function expectedCounts(n: number) {
  const blocked: Partial<Record<RuleCode, number>> = {};
  let allowed = 0;
  for (let i = 0; i < n; i++) {
    // rule order (src/consent/rules.ts): hard_bounced < excluded < no_marketing_consent
    const rule: RuleCode | null = SEED.hardBounced.js(i) ? 'hard_bounced' : SEED.excluded.js(i) ? 'excluded' : !SEED.consent.js(i) ? 'no_marketing_consent' : null;
    if (rule) blocked[rule] = (blocked[rule] ?? 0) + 1;
    else allowed++;
  }
  return { allowed, blocked };
}

async function seed(url: string, orgId: string, audienceId: string, n: number) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const t0 = performance.now();
    await c.query(
      `INSERT INTO contacts (org_id, audience_id, email, email_lower, first_name, last_name, company, job_title, marketing_authorized_at)
       SELECT $1, $2, ${EMAIL_SQL}, ${EMAIL_SQL},
              (${sqlArray(FIRST)})[1 + i % ${FIRST.length}], (${sqlArray(LAST)})[1 + (i / 7) % ${LAST.length}],
              (${sqlArray(COMPANY)})[1 + (i / 3) % ${COMPANY.length}], 'Engineer',
              CASE WHEN ${SEED.consent.sql} THEN now() - interval '30 days' END
       FROM generate_series(0, $3::int - 1) AS i`,
      [orgId, audienceId, n],
    );
    const contactsMs = performance.now() - t0;
    await c.query(
      `INSERT INTO suppressions (org_id, email_lower, reason, created_at, detail)
       SELECT $1, ${EMAIL_SQL}, 'hard_bounce', now() - interval '10 days', 'bench seed' FROM generate_series(0, $2::int - 1) AS i WHERE ${SEED.hardBounced.sql}`,
      [orgId, n],
    );
    await c.query(
      `INSERT INTO exclusions (org_id, email_lower, reason, source, created_by, created_at)
       SELECT $1, ${EMAIL_SQL}, 'bench seed', 'import', 'system', now() - interval '10 days' FROM generate_series(0, $2::int - 1) AS i WHERE ${SEED.excluded.sql}`,
      [orgId, n],
    );
    await c.query('ANALYZE');
    return { contactsMs, totalMs: performance.now() - t0 };
  } finally {
    await c.end();
  }
}

// ---- the template: personalised MJML newsletter, 5 tracked links and the unsubscribe link ----

const ARTICLES = [
  ['Programme of the spring summit', 'https://news.example.org/2026/spring-summit'],
  ['Ten talks you should not miss', 'https://news.example.org/2026/ten-talks'],
  ['Workshops: hands-on data and design', 'https://news.example.org/2026/workshops'],
  ['Meet the speakers', 'https://news.example.org/2026/speakers'],
  ['Early-bird tickets end on Friday', 'https://tickets.example.org/spring-summit?utm_source=newsletter'],
] as const;
const PARAGRAPH =
  'Our programme brings together engineers, designers and researchers for two days of talks, workshops and demos. ' +
  'Doors open at 8:30; coffee and breakfast are served in the main hall. Sessions are recorded and shared with attendees within a week.';

function newsletterMjml(): string {
  let body =
    '<mjml><mj-head><mj-title>News for {{ first_name }}</mj-title><mj-attributes><mj-all font-family="Helvetica, Arial, sans-serif" /></mj-attributes></mj-head>' +
    '<mj-body background-color="#f4f4f4"><mj-section background-color="#ffffff"><mj-column>' +
    '<mj-text font-size="22px" font-weight="bold">Hello {{ first_name | default: "there" }} {{ last_name }},</mj-text>' +
    '<mj-text>This month at {{ organisation_name }}: what is new for {{ company | default: "you" }} and your team.</mj-text>' +
    '</mj-column></mj-section>';
  for (const [title, url] of ARTICLES) {
    body +=
      '<mj-section background-color="#ffffff"><mj-column>' +
      `<mj-text font-size="18px" font-weight="bold">${title}</mj-text><mj-text>${PARAGRAPH}</mj-text>` +
      `<mj-button background-color="#2b59c3" href="${url}">Read more</mj-button>` +
      '</mj-column></mj-section>';
  }
  body +=
    '<mj-section><mj-column><mj-text font-size="11px" color="#777777">You receive this email as {{ contact.email }} because you subscribed to the news of {{ organisation_name }}. ' +
    '<a href="[UNSUBLINK]">Unsubscribe</a></mj-text></mj-column></mj-section></mj-body></mjml>';
  return body;
}

const TEMPLATE = {
  name: 'Monthly newsletter',
  category: 'marketing' as const,
  language: 'en',
  subject: '{{ first_name }}, the spring programme is out',
  preheader: 'Five things for {{ company | default: "you" }} this month',
  format: 'mjml' as const,
  body: newsletterMjml(),
};

// ---- the benchmark ----

export async function campaignBench() {
  const n = int('BENCH_CONTACTS', 1_000_000);
  const sourceMessages = int('BENCH_SOURCE_MESSAGES', 20_000);
  const timeoutMs = int('BENCH_TIMEOUT_SECONDS', 7200) * 1000;
  const concurrency = env.BENCH_CONCURRENCY ? int('BENCH_CONCURRENCY', 10) : null;

  const adminUrl = env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const dbName = `envoi_bench_campaign_${Date.now()}`;
  const url = adminUrl.replace(/\/[^/?]*(\?|$)/, `/${dbName}$1`);
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  // PL/pgSQL time (the message_events triggers) per function in pg_stat_user_functions, this database only
  await admin.query(`ALTER DATABASE ${dbName} SET track_functions = 'pl'`);

  const children: Child[] = [];
  let database: Database | null = null;
  let envoi: Envoi | null = null;
  let poll: pg.Pool | null = null;
  let cleaned: Promise<void> | null = null;
  const cleanup = () =>
    (cleaned ??= (async () => {
      const graceMs = env.BENCH_PROFILE ? 60_000 : 8000;
      await Promise.all(children.filter((c) => c.name !== 'smtp-sink').map((c) => stopChild(c, graceMs)));
      await Promise.all(children.map((c) => stopChild(c)));
      await poll?.end().catch(() => {});
      await (envoi ? envoi.close() : database?.close())?.catch(() => {});
      await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch((e) => console.error(`could not drop ${dbName}: ${String(e)}`));
      await admin.end().catch(() => {});
    })());
  const onSignal = (sig: NodeJS.Signals) => {
    console.error(`\n${sig}: stopping the bench's processes and dropping ${dbName}`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const log = (msg: string) => console.error(`[campaign ${new Date().toISOString().slice(11, 19)}] ${msg}`);
  const results: Record<string, unknown> = { contacts: n, database: 'postgres', startedAt: new Date().toISOString() };
  const rows: Row[] = [];
  let failed = false;
  try {
    // 1. the database, the organisation, the audience, N contacts
    const secret = randomBytes(24).toString('hex');
    const publicUrl = 'http://127.0.0.1:8080';
    const config = { ...loadConfig({}), databaseUrl: url, secret, publicUrl };
    database = await openPostgres(url, 4);
    envoi = await createEnvoi({ config, database, logger: false }); // applies the migrations
    const ctx = envoi.ctx;
    poll = new pg.Pool({ connectionString: url, max: 2 });
    poll.on('error', () => {});
    const org = await orgs.createOrganisation(ctx, { name: 'Bench news', ownerEmail: 'owner@bench.example.com', ownerPassword: 'bench bench bench' });
    const key = await orgs.createApiKey(ctx, org.organisation.id, { name: 'bench', role: 'owner' });
    const p = (await orgs.authenticate(ctx, key.key))!;
    const aud = await audience.createAudience(ctx, p, 'Newsletter readers');
    log(`seeding ${fmt(n, 0)} contacts`);
    const seeded = await seed(url, org.organisation.id, aud.id, n);
    const expected = expectedCounts(n);
    results.seed = { ...seeded, shares: { consent: SEED.consent.share, excluded: SEED.excluded.share, hardBounced: SEED.hardBounced.share }, consentSeededAs: 'contacts.marketing_authorized_at set in SQL (no consent_records)', expected };
    log(`seeded in ${fmt(seeded.totalMs / 1000, 1)} s; expected ${fmt(expected.allowed, 0)} allowed, blocked ${JSON.stringify(expected.blocked)}`);

    // 2. the template and a saved view of the whole audience, through the services
    const template = await createTemplate(ctx, p, aud.id, TEMPLATE);
    const view = await createView(ctx, p, aud.id, { name: 'Everyone', filter: { and: [] } });

    // One message as the worker builds it (render, tracking, compose), for the baseline's message size.
    const sampleContact = (await audience.contactsForSending(ctx.db, org.organisation.id, [
      (await ctx.db.selectFrom('contacts').select('id').where('audience_id', '=', aud.id).where('marketing_authorized_at', 'is not', null).limit(1).executeTakeFirstOrThrow()).id,
    ]))[0]!;
    const compiled = await compileTemplate({ ...TEMPLATE, text: null, tracking: true });
    const fakeDelivery = randomUUID();
    const unsub = unsubscribeTargets(publicUrl, secret, fakeDelivery, config.bounceDomain);
    const rendered = render(compiled, { contact: { ...contactData(sampleContact), email: sampleContact.email }, event: null, vars: { organisation_name: 'Bench news' }, unsubscribe: unsub.url }, 'send', {
      tracking: trackingFor(publicUrl, secret, fakeDelivery),
    });
    const trackedLinks = rendered.html.split(`${publicUrl}/c/`).length - 1;
    if (trackedLinks !== ARTICLES.length) throw new Error(`the template should have ${ARTICLES.length} tracked links, the rendered HTML has ${trackedLinks}`);
    const raw = await buildRaw(
      composeMessage({
        deliveryId: fakeDelivery,
        from: { name: 'Bench news', address: config.mailFrom },
        to: { name: `${sampleContact.first_name} ${sampleContact.last_name}`, address: sampleContact.email },
        subject: rendered.subject,
        html: rendered.html,
        text: rendered.text,
        date: new Date(),
        bounceDomain: config.bounceDomain,
        unsubscribe: unsub,
      }),
    );
    const messageBytes = raw.length;
    results.message = { mjmlBytes: TEMPLATE.body.length, htmlBytes: rendered.html.length, textBytes: rendered.text.length, rawBytes: messageBytes, trackedLinks };

    // 3. the sink and one worker process (worker + campaign scheduler)
    const sink = await startPostfixSink(env);
    children.push(sink.child);
    const workerEnv: NodeJS.ProcessEnv = {
      ...env,
      DATABASE_URL: url,
      SMTP_URL: `smtp://127.0.0.1:${sink.port}`,
      ENVOI_SECRET: secret,
      ENVOI_PUBLIC_URL: publicUrl,
      LOG_LEVEL: 'warn',
      NODE_ENV: 'production',
      ...(concurrency ? { ENVOI_WORKER_CONCURRENCY: String(concurrency) } : {}),
    };
    delete workerEnv.ENVOI_CONFIG;
    const prof = env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${env.BENCH_PROFILE}`] : [];
    const worker = startChild('envoi worker', process.execPath, [...prof, 'bin/envoi.mjs', 'worker'], workerEnv);
    children.push(worker);
    await until('envoi worker start', 90_000, () => (worker.lines.some((l) => l.startsWith('envoi worker ')) ? true : undefined), worker);
    const idleRssKb = statusKb(worker.proc.pid, 'VmRSS');

    // 4. the SMTP limit of this machine, now: smtp-source into the same sink, messages of the same size
    const smtpSource = async (label: string) => {
      const m0 = machineTicks();
      const t0 = performance.now();
      const src = startChild(`smtp-source (${label})`, POSTFIX_TOOLS, ['smtp-source', '-s', '20', '-m', String(sourceMessages), '-l', String(messageBytes), `127.0.0.1:${sink.port}`], env);
      children.push(src);
      const exit = await src.exited;
      const seconds = (performance.now() - t0) / 1000;
      if (exit.code !== 0) throw new Error(`smtp-source exited ${exit.signal ?? exit.code}:\n${src.lines.slice(-20).join('\n')}`);
      const m1 = machineTicks();
      const busyCores = m1.total > m0.total ? ((m1.busy - m0.busy) / (m1.total - m0.total)) * ((m1.total - m0.total) / CLK_TCK / seconds) : NaN;
      return { messages: sourceMessages, bytes: messageBytes, seconds, perSecond: sourceMessages / seconds, machineBusyCores: busyCores };
    };
    log(`baseline: smtp-source ${fmt(sourceMessages, 0)} x ${fmt(messageBytes, 0)} bytes`);
    const before = await smtpSource('before');

    // 5. the campaign: created and started through the service; the worker's scheduler picks it up
    const snap = () => ({ t: performance.now(), wall: Date.now(), worker: ticksOf(worker.proc.pid), sink: ticksOf(sink.child.proc.pid), pg: postgresBackends(dbName), machine: machineTicks(), bench: process.cpuUsage() });
    type Snap = ReturnType<typeof snap>;
    const cores = (a: Snap, b: Snap) => {
      const s = (b.t - a.t) / 1000;
      let pgTicks = 0;
      for (const [pid, t] of b.pg) pgTicks += t - (a.pg.get(pid) ?? 0);
      const c = (ticks: number) => ticks / CLK_TCK / s;
      const mt = b.machine.total - a.machine.total;
      const machine = mt > 0 ? ((b.machine.busy - a.machine.busy) / mt) * (mt / CLK_TCK / s) : NaN;
      const bench = (b.bench.user - a.bench.user + b.bench.system - a.bench.system) / 1e6 / s;
      const r = { seconds: s, worker: c(b.worker - a.worker), postgres: c(pgTicks), sink: c(b.sink - a.sink), bench, machineBusy: machine, others: 0 };
      r.others = Math.max(0, machine - r.worker - r.postgres - r.sink - bench);
      return r;
    };
    type Cores = ReturnType<typeof cores>;
    const coresLine = (c: Cores) =>
      c.seconds < 0.5 ? `n/a (${fmt(c.seconds, 2)} s)` : `worker ${fmt(c.worker, 2)}, postgres ${fmt(c.postgres, 2)}, sink ${fmt(c.sink, 2)}, bench ${fmt(c.bench, 2)}; others ${fmt(c.others, 2)}`;

    const plpgsql = async () =>
      new Map(
        (await poll!.query('SELECT funcname, calls, total_time FROM pg_stat_user_functions')).rows.map((r: { funcname: string; calls: string; total_time: number }) => [
          r.funcname as string,
          { calls: Number(r.calls), ms: Number(r.total_time) },
        ]),
      );
    const f0 = await plpgsql();
    log('starting the campaign');
    const s0 = snap();
    const created = await createCampaign(ctx, p, aud.id, { name: 'Spring news', template_id: template.id, target: { view_id: view.id }, start: true });
    let peakRssKb = 0;
    let resolvedAt: Date | null = null;
    let sResolved: Snap | null = null;
    let startedAt: Date | null = null;
    let messageId: string | null = null;
    let lastProgress = performance.now();
    const rssSamples: { s: number; rssMB: number }[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      assertAlive([worker, sink.child]);
      const r = (await poll.query('SELECT status, started_at, updated_at, message_id, last_error FROM campaigns WHERE id = $1', [created.id])).rows[0];
      const rss = statusKb(worker.proc.pid, 'VmRSS');
      if (rss > peakRssKb) peakRssKb = rss;
      startedAt ??= r.started_at;
      messageId ??= r.message_id;
      if (!resolvedAt && (r.status === 'sending' || r.status === 'completed')) {
        // the scheduler's last write of the resolution sets status 'sending' and updated_at
        resolvedAt = r.status === 'sending' ? r.updated_at : (await poll.query('SELECT max(created_at) AS t FROM deliveries WHERE message_id = $1', [r.message_id])).rows[0].t;
        sResolved = snap();
        log(`recipients resolved: ${fmt((resolvedAt!.getTime() - startedAt!.getTime()) / 1000, 1)} s after the scheduler took the campaign; worker RSS ${fmt(rss / 1024, 0)} MB`);
      }
      if (r.status === 'completed') break;
      if (r.status === 'paused' || r.status === 'cancelled') throw new Error(`the campaign stopped (${r.status}): ${r.last_error}`);
      if (Date.now() > deadline) throw new Error(`the campaign did not complete within ${timeoutMs / 1000} s (status ${r.status})`);
      if (performance.now() - lastProgress > 5000 && messageId) {
        lastProgress = performance.now();
        const st = (await poll.query('SELECT status, count(*)::int AS n FROM deliveries WHERE message_id = $1 GROUP BY 1', [messageId])).rows;
        rssSamples.push({ s: (performance.now() - s0.t) / 1000, rssMB: rss / 1024 });
        log(`${r.status}: ${st.map((x: { status: string; n: number }) => `${x.status} ${x.n}`).join(', ')}; worker RSS ${fmt(rss / 1024, 0)} MB`);
      }
      await new Promise((res) => setTimeout(res, 200));
    }
    const s2 = snap();
    const hwmKb = statusKb(worker.proc.pid, 'VmHWM');
    await new Promise((res) => setTimeout(res, 1100)); // PostgreSQL flushes its statistics at most once a second
    const f1 = await plpgsql();
    const plpgsqlMs = Object.fromEntries(
      [...f1]
        .map(([name, v]) => [name, { calls: v.calls - (f0.get(name)?.calls ?? 0), ms: v.ms - (f0.get(name)?.ms ?? 0) }] as const)
        .filter(([, v]) => v.calls > 0)
        .sort((a, b) => b[1].ms - a[1].ms),
    );
    const endRssKb = statusKb(worker.proc.pid, 'VmRSS');
    log('campaign completed');

    // 6. what the deliveries say
    const byRule = (await poll.query('SELECT status, rule, count(*)::int AS n FROM deliveries WHERE message_id = $1 GROUP BY 1, 2', [messageId])).rows as { status: string; rule: string | null; n: number }[];
    const st = (
      await poll.query(
        `SELECT count(*)::int AS deliveries, count(*) FILTER (WHERE status = 'sent')::int AS sent, min(sent_at) AS first_sent, max(sent_at) AS last_sent,
                count(*) FILTER (WHERE status = 'sent' AND sent_at <= $2)::int AS sent_while_resolving,
                min(created_at) AS first_written, max(created_at) AS last_written
         FROM deliveries WHERE message_id = $1`,
        [messageId, resolvedAt],
      )
    ).rows[0];
    const camp = (await poll.query('SELECT created_at, started_at, completed_at FROM campaigns WHERE id = $1', [created.id])).rows[0];
    const statusCounts: Record<string, number> = {};
    const blocked: Partial<Record<RuleCode, number>> = {};
    for (const r of byRule) {
      statusCounts[r.status] = (statusCounts[r.status] ?? 0) + r.n;
      if (r.status === 'blocked') blocked[r.rule as RuleCode] = (blocked[r.rule as RuleCode] ?? 0) + r.n;
    }
    const mismatches: string[] = [];
    if (st.deliveries !== n) mismatches.push(`deliveries ${st.deliveries}, expected ${n}`);
    if (st.sent !== expected.allowed) mismatches.push(`sent ${st.sent}, expected ${expected.allowed} allowed`);
    for (const rule of RULE_ORDER) if ((blocked[rule] ?? 0) !== (expected.blocked[rule] ?? 0)) mismatches.push(`${rule}: ${blocked[rule] ?? 0}, expected ${expected.blocked[rule] ?? 0}`);
    for (const [status, k] of Object.entries(statusCounts)) if (status !== 'sent' && status !== 'blocked') mismatches.push(`${k} deliveries ended ${status}`);

    // 7. the SMTP limit again, after (the machine is shared: the two runs bracket the campaign)
    const after = await smtpSource('after');
    const sourceRate = (before.perSecond + after.perSecond) / 2;

    const sendSeconds = (st.last_sent.getTime() - st.first_sent.getTime()) / 1000;
    const sendRate = st.sent / sendSeconds;
    const resolveSeconds = (resolvedAt!.getTime() - startedAt!.getTime()) / 1000;
    const pickupSeconds = (startedAt!.getTime() - s0.wall) / 1000;
    const totalSeconds = (st.last_sent.getTime() - s0.wall) / 1000;
    const resolving = cores(s0, sResolved!);
    const sending = cores(sResolved!, s2);
    const whole = cores(s0, s2);
    const cpuMsPer = (c: number) => (st.sent ? (c * whole.seconds * 1000) / st.sent : NaN);
    Object.assign(results, {
      concurrency: concurrency ?? 'worker default (ENVOI_WORKER_CONCURRENCY, 10)',
      campaign: { id: created.id, createdAt: camp.created_at, startedAt: camp.started_at, resolvedAt, completedAt: camp.completed_at, firstSent: st.first_sent, lastSent: st.last_sent },
      resolution: { seconds: resolveSeconds, deliveryRowsPerSecond: n / resolveSeconds, schedulerPickupSeconds: pickupSeconds, sentWhileResolving: st.sent_while_resolving },
      sending: { sent: st.sent, seconds: sendSeconds, messagesPerSecond: sendRate, fromCampaignStartSeconds: totalSeconds, messagesPerSecondFromStart: st.sent / totalSeconds },
      policy: { statusCounts, blockedByRule: blocked, expected, match: mismatches.length === 0, mismatches },
      workerMemory: { idleRssMB: idleRssKb / 1024, peakRssMB_VmHWM: hwmKb / 1024, peakRssMB_sampled: peakRssKb / 1024, endRssMB: endRssKb / 1024, samples: rssSamples },
      cpuCores: { resolving, sending, whole },
      cpuMsPerSentMessage: { worker: cpuMsPer(whole.worker), postgres: cpuMsPer(whole.postgres), sink: cpuMsPer(whole.sink) },
      smtpSource: { before, after },
      plpgsqlMs,
    });

    const blockedLine = (b: Partial<Record<RuleCode, number>>) =>
      RULE_ORDER.filter((r) => b[r])
        .map((r) => `${r} ${fmt(b[r]!, 0)}`)
        .join(', ');
    rows.push(
      { measure: `seed: ${fmt(n, 0)} contacts + suppressions + exclusions (SQL)`, value: `${fmt(seeded.totalMs / 1000, 1)} s`, baseline: 'consent = contacts.marketing_authorized_at set in SQL, no ledger records' },
      { measure: 'message (MJML, 5 tracked links, personalised)', value: `${fmt(messageBytes, 0)} bytes raw`, baseline: `MJML source ${fmt(TEMPLATE.body.length, 0)} B, HTML ${fmt(rendered.html.length, 0)} B` },
      { measure: 'scheduler pick-up (created -> taken)', value: `${fmt(pickupSeconds, 1)} s`, baseline: 'scheduler polls every 1 s' },
      {
        measure: `resolve recipients + write ${fmt(n, 0)} delivery rows`,
        value: `${fmt(resolveSeconds, 1)} s (${fmt(n / resolveSeconds, 0)} rows/s)`,
        baseline: `${fmt(st.sent_while_resolving, 0)} sent meanwhile`,
      },
      {
        measure: `sent, first to last sent_at (${fmt(st.sent, 0)} messages)`,
        value: `${fmt(sendRate, 0)} msg/s in ${fmt(sendSeconds, 1)} s`,
        baseline: `smtp-source ${fmt(sourceRate, 0)} msg/s (${fmt(before.perSecond, 0)} before, ${fmt(after.perSecond, 0)} after)`,
        ratio: `${fmt(sendRate / sourceRate, 3)} of SMTP limit`,
        target: '',
      },
      { measure: 'campaign created -> last message sent', value: `${fmt(totalSeconds, 1)} s (${fmt(st.sent / totalSeconds, 0)} msg/s)` },
      {
        measure: 'policy counts (deliveries table)',
        value: `${fmt(st.sent, 0)} sent; blocked: ${blockedLine(blocked)}`,
        baseline: `expected ${fmt(expected.allowed, 0)}; ${blockedLine(expected.blocked)}`,
        ratio: mismatches.length ? 'MISMATCH' : 'exact',
      },
      { measure: 'worker peak RSS (VmHWM)', value: `${fmt(hwmKb / 1024, 0)} MB`, baseline: `idle ${fmt(idleRssKb / 1024, 0)} MB, at the end ${fmt(endRssKb / 1024, 0)} MB` },
      { measure: 'CPU cores while resolving', value: coresLine(resolving), baseline: `machine busy ${fmt(resolving.machineBusy, 2)} of 2` },
      { measure: 'CPU cores while sending only', value: coresLine(sending), baseline: `machine busy ${fmt(sending.machineBusy, 2)} of 2` },
      {
        measure: 'PL/pgSQL (triggers), whole campaign',
        value:
          Object.entries(plpgsqlMs)
            .slice(0, 3)
            .map(([name, v]) => `${name} ${fmt(v.ms / 1000, 1)} s (${fmt(v.calls, 0)} calls)`)
            .join(', ') || 'none',
        baseline: `postgres CPU ${fmt(whole.postgres * whole.seconds, 1)} s`,
      },
      { measure: 'CPU ms per sent message: worker / postgres / sink', value: `${fmt(cpuMsPer(whole.worker), 2)} / ${fmt(cpuMsPer(whole.postgres), 2)} / ${fmt(cpuMsPer(whole.sink), 3)}` },
    );
    printTable(`Campaign: ${fmt(n, 0)} contacts, PostgreSQL, 1 envoi worker process, postfix smtp-sink (${new Date().toISOString()})`, rows);
    writeResults('campaign', results);
    if (mismatches.length) throw new Error(`policy counts differ from the seeded expectation:\n  ${mismatches.join('\n  ')}`);
    const warnings = worker.lines.filter((l) => /"level":"(warn|error)"/.test(l));
    if (warnings.length) console.error(`\n${warnings.length} warning/error log lines from the worker; first ones:\n${warnings.slice(0, 5).join('\n')}`);
    if (!alive(worker)) throw new Error('the worker exited before the end');
  } catch (e) {
    failed = true;
    for (const c of children) console.error(`\n--- last lines of ${c.name} ---\n${c.lines.slice(-20).join('\n')}`);
    throw e;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await cleanup();
    if (failed) console.error(`dropped ${dbName}`);
  }
}
