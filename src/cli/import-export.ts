import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Option, type Command } from 'commander';
import type { AppContext } from '../platform/context.ts';
import type { Principal } from '../organisations/service.ts';
import { importContacts, type ImportReport } from '../audience/import-service.ts';
import type { Delimiter, Mapping } from '../audience/import-rules.ts';
import { exportContacts } from '../audience/csv-export.ts';

type Org = { id: string; name: string };

export interface CliHelpers {
  withContext<T>(fn: (ctx: AppContext) => Promise<T>): Promise<T>;
  findOrg(ctx: AppContext, nameOrId: string): Promise<Org | undefined>;
  soleOrg(ctx: AppContext): Promise<Org | undefined>;
}

/**
 * Whoever runs `envoi` on the server holds the database credentials, that is every organisation's
 * data already; the commands still go through the services rather than the tables so that they get
 * the same organisation scoping, validation and batching as the API. The services want a Principal:
 * this one is an owner of the chosen organisation, of kind 'key' because it is a machine acting (no
 * user session), with the id "cli" since no API key row backs it (imports record it as their author).
 */
export function cliPrincipal(orgId: string): Principal {
  return { orgId, role: 'owner', kind: 'key', id: 'cli', audienceIds: null, rateLimitPerMinute: null };
}

/** `--map 'CSV header=field'`: split on the last "=" (a header may hold one, a field key cannot); "Notes=" ignores the column. */
export function parseMapArgs(entries: string[]): Mapping {
  const mapping: Mapping = {};
  for (const e of entries) {
    const at = e.lastIndexOf('=');
    if (at <= 0) throw new Error(`--map takes 'CSV header=field', got '${e}'`);
    mapping[e.slice(0, at)] = e.slice(at + 1).trim() || null;
  }
  return mapping;
}

const DELIMITERS: Record<string, Delimiter> = { comma: ',', semicolon: ';', tab: '\t' };
const n = (x: number) => x.toLocaleString('en-US');

export function formatReport(r: ImportReport): string {
  const lines = [
    `import ${r.id}: ${r.status}`,
    `  rows ${n(r.rows)}: ${n(r.created)} created, ${n(r.updated)} updated${r.duplicates ? ` (${n(r.duplicates)} of them repeat an email seen earlier in the file: the later row won)` : ''}, ${n(r.skipped)} skipped`,
  ];
  if (r.records) lines.push(`  ${r.records.kind}s: ${n(r.records.created)} registered, ${n(r.records.updated)} already there (updated)`);
  lines.push(`  columns: ${r.columns.map((c) => `${c.header} -> ${c.field}`).join(', ')}`);
  if (r.ignored_columns.length) lines.push(`  ignored columns: ${r.ignored_columns.join(', ')}`);
  if (r.failure) lines.push(`  stopped: ${r.failure}`);
  if (r.error_count) {
    lines.push(`  ${n(r.error_count)} bad rows${r.error_count > r.errors.length ? ` (first ${n(r.errors.length)} listed)` : ''}:`);
    for (const e of r.errors) lines.push(`    line ${e.line}: ${e.reason}`);
  }
  return lines.join('\n') + '\n';
}

async function orgFor(h: CliHelpers, ctx: AppContext, org: string | undefined): Promise<Org> {
  const found = org ? await h.findOrg(ctx, org) : await h.soleOrg(ctx);
  if (!found) throw new Error(org ? `no organisation "${org}"` : 'several or no organisations: pass --org <name or id>');
  return found;
}

export function registerImportExport(program: Command, h: CliHelpers) {
  program
    .command('import')
    .description('import contacts from a CSV file into an audience (upsert by email); prints progress, then the report')
    .argument('<file>', 'CSV file (UTF-8, comma, semicolon or tab separated, first line = column names)')
    .requiredOption('--audience <id>')
    .option('--event <id>', 'also register every row as a participant of this event')
    .option('--community <id>', 'also register every row as a member of this community')
    .option('--map <header=field>', "map a CSV column to a field, repeatable: --map 'E-mail=email' --map 'Prénom=first_name'; when given, only the mapped columns are read ('Notes=' ignores one)", (v: string, prev: string[] = []) => [...prev, v])
    .addOption(new Option('--empty-cells <mode>', 'keep: an empty cell leaves the stored value; clear: it erases it').choices(['keep', 'clear']).default('keep'))
    .addOption(new Option('--delimiter <d>', 'instead of detecting it from the first line').choices(['comma', 'semicolon', 'tab']))
    .option('--org <name or id>', 'organisation (default: the only one)')
    .option('--json', 'print the report as JSON')
    .action(async (file: string, o: { audience: string; event?: string; community?: string; map?: string[]; emptyCells: 'keep' | 'clear'; delimiter?: string; org?: string; json?: boolean }) => {
      await h.withContext(async (ctx) => {
        const org = await orgFor(h, ctx, o.org);
        const started = Date.now();
        let shown = 0;
        // One line rewritten in place on a terminal; an occasional plain line when logged to a file.
        const tty = process.stderr.isTTY === true;
        const progress = (rows: number, done = false) => {
          const now = Date.now();
          if (!done && now - shown < (tty ? 250 : 5000)) return;
          shown = now;
          const rate = rows / Math.max(0.001, (now - started) / 1000);
          const text = `${done ? 'read' : 'importing...'} ${n(rows)} rows (${n(Math.round(rate))} rows/s)`;
          process.stderr.write(tty ? `\r${text}${done ? '\n' : ''}` : `${text}\n`);
        };
        const report = await importContacts(
          ctx,
          cliPrincipal(org.id),
          {
            audienceId: o.audience,
            eventId: o.event,
            communityId: o.community,
            mapping: o.map?.length ? parseMapArgs(o.map) : null,
            emptyClears: o.emptyCells === 'clear',
            delimiter: o.delimiter ? DELIMITERS[o.delimiter] : undefined,
            source: 'cli',
            onProgress: (c) => progress(c.rows),
          },
          createReadStream(file),
        );
        progress(report.rows, true);
        process.stdout.write(o.json ? JSON.stringify(report, null, 2) + '\n' : formatReport(report));
        if (report.status !== 'completed') process.exitCode = 1;
      });
    });

  program
    .command('export')
    .description('export the contacts of an audience as CSV (formula-like cells neutralised)')
    .requiredOption('--audience <id>')
    .option('--view <id>', 'only the contacts of this saved view (needs the contacts grid)')
    .option('--out <file>', 'write to this file (default: standard output)')
    .addOption(new Option('--delimiter <d>').choices(['comma', 'semicolon']).default('comma'))
    .option('--bom', 'start with a UTF-8 byte order mark (for Excel)')
    .option('--org <name or id>', 'organisation (default: the only one)')
    .action(async (o: { audience: string; view?: string; out?: string; delimiter: 'comma' | 'semicolon'; bom?: boolean; org?: string }) => {
      await h.withContext(async (ctx) => {
        const org = await orgFor(h, ctx, o.org);
        const { stream } = await exportContacts(ctx, cliPrincipal(org.id), {
          audienceId: o.audience,
          viewId: o.view,
          delimiter: o.delimiter === 'semicolon' ? ';' : ',',
          bom: o.bom ?? false,
        });
        if (o.out) await pipeline(stream, createWriteStream(o.out));
        else await pipeline(stream, process.stdout, { end: false });
      });
    });
}
