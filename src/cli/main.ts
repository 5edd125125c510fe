import { Command, Option } from 'commander';
import { loadConfig, ConfigError, type Config } from '../platform/config.ts';
import { openDatabase } from '../platform/database.ts';
import { migrate } from '../platform/migrate.ts';
import { createContext } from '../platform/context.ts';
import { serve } from '../platform/server.ts';
import * as orgs from '../organisations/service.ts';
import { readSecret } from './prompt.ts';
import { registerImportExport } from './import-export.ts';
import { registerWorker, startWorkerInServer } from './worker.ts';
import { startBounceListenerInServer } from './bounce-listener.ts';
import { limitHeapGrowth } from '../platform/heap-growth.ts';

function config(): Config {
  try {
    return loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
}

async function withContext<T>(fn: (ctx: ReturnType<typeof createContext>) => Promise<T>): Promise<T> {
  const cfg = config();
  const database = await openDatabase(cfg);
  try {
    await migrate(database);
    return await fn(createContext(cfg, database));
  } finally {
    await database.close();
  }
}

const program = new Command('envoi').description('Audiences, consent and lawful email for event organisers').showHelpAfterError();

program.command('serve').description('HTTP API and back office (and the sending worker on the embedded database, which no other process can open)').action(async () => {
  const cfg = config();
  if (!cfg.databaseUrl) limitHeapGrowth();
  const envoi = await serve(cfg);
  if (!cfg.databaseUrl) startWorkerInServer(envoi);
  await startBounceListenerInServer(envoi);
});

program.command('start').description('server and sending worker in one process, ready for a first user (what `npm start` runs)').action(async () => {
  const cfg = config();
  if (!cfg.databaseUrl) limitHeapGrowth();
  const envoi = await serve(cfg);
  startWorkerInServer(envoi);
  await startBounceListenerInServer(envoi);
});

program.command('migrate').description('apply pending database migrations (safe to run twice)').action(async () => {
  const cfg = config();
  const database = await openDatabase(cfg);
  const { applied } = await migrate(database);
  await database.close();
  process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
});

const user = program.command('user').description('back-office users');
user
  .command('create')
  .description('create a back-office user (and its organisation with --org when it does not exist yet)')
  .requiredOption('--email <email>')
  .addOption(new Option('--role <role>').choices(['owner', 'editor', 'viewer']).default('owner'))
  .option('--org <name or id>', 'organisation name (created if new) or id')
  .option('--password <password>', 'password (prompted, or read from ENVOI_PASSWORD, when absent)')
  .action(async (o: { email: string; role: 'owner' | 'editor' | 'viewer'; org?: string; password?: string }) => {
    const password = o.password ?? process.env.ENVOI_PASSWORD ?? (await readSecret('Password (10+ characters): '));
    await withContext(async (ctx) => {
      const existing = o.org ? await findOrg(ctx, o.org) : await soleOrg(ctx);
      if (existing) {
        const u = await orgs.createUser(ctx, existing.id, { email: o.email, password, role: o.role });
        process.stdout.write(`created ${u.role} ${u.email} in organisation "${existing.name}" (${existing.id})\n`);
      } else {
        if (!o.org) throw new Error('no organisation yet: pass --org "Name" to create one');
        const created = await orgs.createOrganisation(ctx, { name: o.org, ownerEmail: o.email, ownerPassword: password });
        process.stdout.write(`created organisation "${created.organisation.name}" (${created.organisation.id}) with owner ${created.owner.email}\n`);
      }
    });
  });

const key = program.command('key').description('API keys');
key
  .command('create')
  .description('create an API key; the secret is printed once')
  .requiredOption('--name <name>')
  .option('--org <name or id>')
  .addOption(new Option('--role <role>').choices(['owner', 'editor', 'viewer']).default('editor'))
  .option('--audience <id...>', 'limit the key to these audiences')
  .option('--rate-limit <perMinute>', 'requests per minute', (v) => Number(v))
  .action(async (o: { name: string; org?: string; role: 'owner' | 'editor' | 'viewer'; audience?: string[]; rateLimit?: number }) => {
    await withContext(async (ctx) => {
      const org = o.org ? await findOrg(ctx, o.org) : await soleOrg(ctx);
      if (!org) throw new Error(o.org ? `no organisation "${o.org}"` : 'several or no organisations: pass --org');
      const k = await orgs.createApiKey(ctx, org.id, { name: o.name, role: o.role, audienceIds: o.audience, rateLimitPerMinute: o.rateLimit });
      process.stdout.write(`${k.key}\n`);
      process.stderr.write(`API key "${k.name}" (${k.role}) for "${org.name}". Store it now: it is not shown again.\n`);
    });
  });

async function findOrg(ctx: ReturnType<typeof createContext>, nameOrId: string) {
  const isUuid = /^[0-9a-f-]{36}$/i.test(nameOrId);
  return ctx.db
    .selectFrom('organisations')
    .select(['id', 'name'])
    .where((eb) => (isUuid ? eb('id', '=', nameOrId) : eb('name', '=', nameOrId)))
    .executeTakeFirst();
}

async function soleOrg(ctx: ReturnType<typeof createContext>) {
  const all = await ctx.db.selectFrom('organisations').select(['id', 'name']).limit(2).execute();
  return all.length === 1 ? all[0] : undefined;
}

registerImportExport(program, { withContext, findOrg, soleOrg });
registerWorker(program);

export { program };

program.parseAsync(process.argv).catch((e: unknown) => {
  const err = e as { message?: string; status?: number };
  process.stderr.write(`envoi: ${err.message ?? String(e)}\n`);
  process.exit(1);
});
