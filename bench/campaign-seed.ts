// The campaign benches' audience and newsletter (bench/campaign.ts, bench/resolution.ts): the same seed and
// template, so that their figures describe the same campaign.
import type { RuleCode } from '../src/consent/rules.ts';

// ---- the seed: who is who, from the contact number i (0 <= i < N), in SQL and in JS alike ----

export const SEED = {
  consent: { sql: 'i % 10 < 7', js: (i: number) => i % 10 < 7, share: '70%' },
  excluded: { sql: 'i % 20 = 1', js: (i: number) => i % 20 === 1, share: '5%' },
  hardBounced: { sql: 'i % 50 = 3', js: (i: number) => i % 50 === 3, share: '2%' },
};
export const EMAIL_SQL = `'person' || i || '@example' || (i % 97) || '.com'`;
export const FIRST = ['Ada', 'Grace', 'Alan', 'Linus', 'Margaret', 'Tim', 'Barbara', 'Ken', 'Frances', 'Dennis', 'Hedy', 'John', 'Radia', 'Edsger', 'Karen', 'Donald'];
export const LAST = ['Lovelace', 'Hopper', 'Turing', 'Torvalds', 'Hamilton', 'Berners-Lee', 'Liskov', 'Thompson', 'Allen', 'Ritchie', 'Lamarr', 'McCarthy', 'Perlman', 'Dijkstra', 'Jones', 'Knuth'];
export const COMPANY = ['Initech', 'Globex', 'Umbrella', 'Hooli', 'Vandelay', 'Acme', 'Stark', 'Wayne', 'Tyrell', 'Cyberdyne'];
export const sqlArray = (a: string[]) => `ARRAY[${a.map((s) => `'${s.replace(/'/g, "''")}'`).join(',')}]`;

/** What the policy must decide for each seeded contact, in the policy's own rule order. */
export function expectedCounts(n: number) {
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

/** The seed as one SQL script (values inlined: the ids are ours), for PostgreSQL and PGlite alike. */
export function seedSql(orgId: string, audienceId: string, n: number): string {
  const uuid = (x: string) => {
    if (!/^[0-9a-f-]{36}$/.test(x)) throw new Error(`not a uuid: ${x}`);
    return `'${x}'::uuid`;
  };
  return `
    INSERT INTO contacts (org_id, audience_id, email, email_lower, first_name, last_name, company, job_title, marketing_authorized_at)
    SELECT ${uuid(orgId)}, ${uuid(audienceId)}, ${EMAIL_SQL}, ${EMAIL_SQL},
           (${sqlArray(FIRST)})[1 + i % ${FIRST.length}], (${sqlArray(LAST)})[1 + (i / 7) % ${LAST.length}],
           (${sqlArray(COMPANY)})[1 + (i / 3) % ${COMPANY.length}], 'Engineer',
           CASE WHEN ${SEED.consent.sql} THEN now() - interval '30 days' END
    FROM generate_series(0, ${n - 1}) AS i;
    INSERT INTO suppressions (org_id, email_lower, reason, created_at, detail)
    SELECT ${uuid(orgId)}, ${EMAIL_SQL}, 'hard_bounce', now() - interval '10 days', 'bench seed' FROM generate_series(0, ${n - 1}) AS i WHERE ${SEED.hardBounced.sql};
    INSERT INTO exclusions (org_id, email_lower, reason, source, created_by, created_at)
    SELECT ${uuid(orgId)}, ${EMAIL_SQL}, 'bench seed', 'import', 'system', now() - interval '10 days' FROM generate_series(0, ${n - 1}) AS i WHERE ${SEED.excluded.sql};
    ANALYZE;`;
}

/** Contact i as the seed makes it: for the naive baseline and the sample message. */
export function seededContact(i: number) {
  return {
    email: `person${i}@example${i % 97}.com`,
    first_name: FIRST[i % FIRST.length]!,
    last_name: LAST[Math.floor(i / 7) % LAST.length]!,
    company: COMPANY[Math.floor(i / 3) % COMPANY.length]!,
    job_title: 'Engineer',
  };
}

// ---- the template: personalised MJML newsletter, 5 tracked links and the unsubscribe link ----

export const ARTICLES = [
  ['Programme of the spring summit', 'https://news.example.org/2026/spring-summit'],
  ['Ten talks you should not miss', 'https://news.example.org/2026/ten-talks'],
  ['Workshops: hands-on data and design', 'https://news.example.org/2026/workshops'],
  ['Meet the speakers', 'https://news.example.org/2026/speakers'],
  ['Early-bird tickets end on Friday', 'https://tickets.example.org/spring-summit?utm_source=newsletter'],
] as const;
export const PARAGRAPH =
  'Our programme brings together engineers, designers and researchers for two days of talks, workshops and demos. ' +
  'Doors open at 8:30; coffee and breakfast are served in the main hall. Sessions are recorded and shared with attendees within a week.';

export function newsletterMjml(): string {
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

export const TEMPLATE = {
  name: 'Monthly newsletter',
  category: 'marketing' as const,
  language: 'en',
  subject: '{{ first_name }}, the spring programme is out',
  preheader: 'Five things for {{ company | default: "you" }} this month',
  format: 'mjml' as const,
  body: newsletterMjml(),
};

