import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

/** Kysely's view of the tables created by `migrations/`. Keep in step with the SQL. */
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
type Json<T = Record<string, unknown>> = ColumnType<T, T | string | undefined, T | string>;

export type Role = 'owner' | 'editor' | 'viewer';
export type FieldType = 'text' | 'number' | 'date' | 'boolean' | 'choice' | 'multi_choice';
export type FieldScope = 'audience' | 'event' | 'community';

export interface OrganisationsTable {
  id: Generated<string>;
  name: string;
  settings: Json;
  created_at: Generated<Date>;
}

export interface UsersTable {
  id: Generated<string>;
  org_id: string;
  email: string;
  name: Generated<string>;
  role: Role;
  password_hash: string;
  created_at: Generated<Date>;
}

export interface UserSessionsTable {
  id: Generated<string>;
  user_id: string;
  token_hash: string;
  created_at: Generated<Date>;
  expires_at: Timestamp;
}

export interface ApiKeysTable {
  id: Generated<string>;
  org_id: string;
  name: string;
  prefix: string;
  key_hash: string;
  role: Generated<Role>;
  audience_ids: string[] | null;
  rate_limit_per_minute: Generated<number>;
  created_at: Generated<Date>;
  last_used_at: NullableTimestamp;
  revoked_at: NullableTimestamp;
}

export interface AudiencesTable {
  id: Generated<string>;
  org_id: string;
  name: string;
  created_at: Generated<Date>;
}

export interface EventsTable {
  id: Generated<string>;
  org_id: string;
  audience_id: string;
  name: string;
  starts_at: Timestamp;
  ends_at: Timestamp;
  time_zone: string;
  created_at: Generated<Date>;
}

export interface CommunitiesTable {
  id: Generated<string>;
  org_id: string;
  audience_id: string;
  name: string;
  created_at: Generated<Date>;
}

export interface FieldsTable {
  id: Generated<string>;
  org_id: string;
  audience_id: string;
  scope: FieldScope;
  event_id: string | null;
  community_id: string | null;
  key: string;
  label: string;
  type: FieldType;
  options: Json<string[] | null> | null;
  created_at: Generated<Date>;
}

export interface CompaniesTable {
  id: Generated<string>;
  org_id: string;
  audience_id: string;
  name: string;
  created_at: Generated<Date>;
}

export interface ContactsTable {
  id: Generated<string>;
  org_id: string;
  audience_id: string;
  email: string;
  email_lower: string;
  first_name: string | null;
  last_name: string | null;
  company: string | null;
  job_title: string | null;
  company_id: string | null;
  fields: Json;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  marketing_authorized_at: NullableTimestamp;
}

export interface ParticipantsTable {
  id: Generated<string>;
  org_id: string;
  audience_id: string;
  event_id: string;
  contact_id: string | null;
  data: Json;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface MembersTable {
  id: Generated<string>;
  org_id: string;
  audience_id: string;
  community_id: string;
  contact_id: string | null;
  data: Json;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface ContactAccountsTable {
  contact_id: string;
  org_id: string;
  audience_id: string;
  password_hash: string;
  confirmed_at: NullableTimestamp;
  failed_attempts: Generated<number>;
  locked_until: NullableTimestamp;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface AccountTokensTable {
  id: Generated<string>;
  contact_id: string;
  kind: 'confirm' | 'reset';
  token_hash: string;
  created_at: Generated<Date>;
  expires_at: Timestamp;
  used_at: NullableTimestamp;
}

export interface SavedViewsTable {
  id: Generated<string>;
  org_id: string;
  audience_id: string;
  name: string;
  definition: Json;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface SchemaMigrationsTable {
  version: number;
  name: string;
  applied_at: Generated<Date>;
}

export interface DB {
  organisations: OrganisationsTable;
  users: UsersTable;
  user_sessions: UserSessionsTable;
  api_keys: ApiKeysTable;
  audiences: AudiencesTable;
  events: EventsTable;
  communities: CommunitiesTable;
  fields: FieldsTable;
  companies: CompaniesTable;
  contacts: ContactsTable;
  participants: ParticipantsTable;
  members: MembersTable;
  contact_accounts: ContactAccountsTable;
  account_tokens: AccountTokensTable;
  saved_views: SavedViewsTable;
  schema_migrations: SchemaMigrationsTable;
}

export type Contact = Selectable<ContactsTable>;
export type NewContact = Insertable<ContactsTable>;
export type ContactUpdate = Updateable<ContactsTable>;
export type Field = Selectable<FieldsTable>;
export type Event = Selectable<EventsTable>;
export type Community = Selectable<CommunitiesTable>;
