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
  marketing_withdrawn_at: NullableTimestamp;
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
  imports: ImportsTable;
  templates: TemplatesTable;
  template_versions: TemplateVersionsTable;
  template_previews: TemplatePreviewsTable;
  messages: MessagesTable;
  deliveries: DeliveriesTable;
  message_events: MessageEventsTable;
  suppressions: SuppressionsTable;
  rate_counters: RateCountersTable;
  outbox: OutboxTable;
  report_hourly: ReportHourlyTable;
  report_link_hourly: ReportLinkHourlyTable;
  report_firsts: ReportFirstsTable;
  report_link_clicks: ReportLinkClicksTable;
  consent_records: ConsentRecordsTable;
  exclusions: ExclusionsTable;
  instance_settings: InstanceSettingsTable;
  campaigns: CampaignsTable;
  signup_forms: SignupFormsTable;
  webhook_endpoints: WebhookEndpointsTable;
  webhook_events: WebhookEventsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  programs: ProgramsTable;
  external_events: ExternalEventsTable;
  program_entries: ProgramEntriesTable;
}

// ---- follow-up programs (0013_programs.sql): entries of message triggers are written by a trigger ----

export type ProgramTriggerType = 'message_sent' | 'message_opened' | 'message_clicked' | 'external_event' | 'date_field';
export type ProgramEntryStatus = 'waiting' | 'sent' | 'skipped' | 'failed';

export interface ProgramsTable {
  id: Generated<string>;
  org_id: string;
  audience_id: string;
  name: string;
  trigger: Json;
  trigger_type: ProgramTriggerType;
  trigger_template_id: string | null;
  trigger_name: string | null;
  wait_seconds: number;
  condition: Json<unknown> | null;
  template_id: string;
  enabled: Generated<boolean>;
  scanned_through: string | null;
  next_scan_at: NullableTimestamp;
  scan_leased_by: string | null;
  scan_lease_until: NullableTimestamp;
  created_by: string;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface ExternalEventsTable {
  id: Generated<string>;
  org_id: string;
  audience_id: string;
  contact_id: string;
  name: string;
  occurred_at: Timestamp;
  properties: Json;
  idempotency_key: string | null;
  request_hash: string;
  created_by: string;
  created_at: Generated<Date>;
}

export interface ProgramEntriesTable {
  id: Generated<string>;
  org_id: string;
  program_id: string;
  contact_id: string;
  trigger_key: string;
  trigger_at: Timestamp;
  context: Json;
  due_at: Timestamp;
  status: Generated<ProgramEntryStatus>;
  reason: string | null;
  message_id: string | null;
  attempts: Generated<number>;
  leased_by: string | null;
  lease_until: NullableTimestamp;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  finished_at: NullableTimestamp;
}

// ---- webhooks (0011_webhooks.sql): events and deliveries are written by triggers ----

export interface WebhookEndpointsTable {
  id: Generated<string>;
  org_id: string;
  url: string;
  description: Generated<string>;
  /** event types of src/webhooks/rules.ts, or '*' */
  event_types: string[];
  secret: string;
  enabled: Generated<boolean>;
  created_by: string;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface WebhookEventsTable {
  id: Generated<string>;
  org_id: string;
  type: string;
  payload: Json<unknown>;
  occurred_at: Timestamp;
}

export type WebhookDeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface WebhookAttempt {
  at: string;
  status_code: number | null;
  error: string | null;
  duration_ms: number;
}

export interface WebhookDeliveriesTable {
  id: Generated<string>;
  org_id: string;
  endpoint_id: string;
  event_id: string;
  status: Generated<WebhookDeliveryStatus>;
  attempts: Generated<number>;
  series_base: Generated<number>;
  /** '-infinity' (due at once) until the first attempt: the drivers return that as -Infinity, not a Date */
  next_attempt_at: ColumnType<Date | number, Date | string | undefined, Date | string>;
  retry_until: NullableTimestamp;
  leased_by: string | null;
  lease_until: NullableTimestamp;
  last_attempt_at: NullableTimestamp;
  last_status_code: number | null;
  last_error: string | null;
  response_snippet: string | null;
  attempt_log: Json<WebhookAttempt[]>;
  created_at: Generated<Date>;
  delivered_at: NullableTimestamp;
  failed_at: NullableTimestamp;
}

export interface SignupFormsTable {
  id: Generated<string>;
  org_id: string;
  audience_id: string;
  name: string;
  language: 'fr' | 'en';
  wording: string;
  wording_version: string;
  success_url: string | null;
  created_by: string;
  created_at: Generated<Date>;
  disabled_at: NullableTimestamp;
}

export type CampaignStatus = 'draft' | 'scheduled' | 'resolving' | 'sending' | 'paused' | 'completed' | 'cancelled';

export interface CampaignsTable {
  id: Generated<string>;
  org_id: string;
  audience_id: string;
  name: string;
  kind: Generated<'marketing' | 'event' | 'repermission'>;
  deadline: NullableTimestamp;
  event_mail: EventMailKind | null;
  event_id: string | null;
  template_id: string;
  target: Json<CampaignTarget>;
  status: CampaignStatus;
  send_at: NullableTimestamp;
  every_minutes: number | null;
  next_run_at: NullableTimestamp;
  message_id: string | null;
  resolved_after: string | null;
  runs: Generated<number>;
  paused_from: CampaignStatus | null;
  leased_by: string | null;
  lease_until: NullableTimestamp;
  last_error: string | null;
  created_by: string;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  started_at: NullableTimestamp;
  completed_at: NullableTimestamp;
}

export type EventMailKind = 'reminder' | 'thank_you' | 'practical_info' | 'badge' | 'new_content';

export type CampaignTarget = { view_id: string } | { filter: unknown } | { contact_ids: string[] };

export interface ConsentRecordsTable {
  seq: Generated<string>;
  id: Generated<string>;
  org_id: string;
  audience_id: string;
  contact_id: string | null;
  email: string | null;
  email_hash: string;
  purpose: 'marketing';
  action: ConsentAction;
  method: string;
  wording: string | null;
  wording_version: string | null;
  ip: string | null;
  ip_hash: string | null;
  user_agent: string | null;
  user_agent_hash: string | null;
  message_id: string | null;
  delivery_id: string | null;
  campaign_id: string | null;
  actor: string;
  at: Timestamp;
  prev_hash: string;
  hash: string;
}

export type ConsentAction = 'requested' | 'given' | 'confirmed' | 'withdrawn' | 'repermission_yes' | 'repermission_no' | 'unsubscribed' | 'excluded' | 'restored';

export interface ExclusionsTable {
  org_id: string;
  email_lower: string;
  reason: string | null;
  source: string;
  created_by: string;
  created_at: Timestamp;
}

export interface InstanceSettingsTable {
  name: string;
  value: string;
  created_at: Generated<Date>;
}

export type Contact = Selectable<ContactsTable>;
export type NewContact = Insertable<ContactsTable>;
export type ContactUpdate = Updateable<ContactsTable>;
export type Field = Selectable<FieldsTable>;
export type Event = Selectable<EventsTable>;
export type Community = Selectable<CommunitiesTable>;

export interface ImportsTable {
  id: Generated<string>;
  org_id: string;
  audience_id: string;
  event_id: string | null;
  community_id: string | null;
  created_by: string;
  source: 'http' | 'cli';
  status: 'running' | 'completed' | 'failed';
  delimiter: string;
  columns: Json<{ header: string; field: string }[]>;
  ignored_columns: Json<string[]>;
  rows: Generated<number>;
  created: Generated<number>;
  updated: Generated<number>;
  skipped: Generated<number>;
  duplicates: Generated<number>;
  records_created: Generated<number>;
  records_updated: Generated<number>;
  error_count: Generated<number>;
  errors: Json<{ line: number; reason: string }[]>;
  failure: string | null;
  started_at: Generated<Date>;
  finished_at: NullableTimestamp;
}

// ---- sending (0005_sending.sql) ----

export type MessageCategory = 'transactional' | 'participation' | 'marketing';
export type DeliveryStatus = 'queued' | 'sending' | 'sent' | 'deferred' | 'bounced' | 'blocked' | 'failed' | 'paused';
export type Lane = 'transactional' | 'bulk';

export interface TemplatesTable {
  id: Generated<string>;
  org_id: string;
  audience_id: string;
  event_id: string | null;
  community_id: string | null;
  name: string;
  builtin_kind: string | null;
  language: string;
  version: Generated<number>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  deleted_at: NullableTimestamp;
}

export interface TemplatePreviewsTable {
  org_id: string;
  principal: string;
  slot: number;
  token_hash: Buffer;
  audience_id: string;
  html: string;
  expires_at: Date;
}

export interface TemplateVersionsTable {
  template_id: string;
  version: number;
  category: MessageCategory;
  language: string;
  subject: string;
  preheader: string | null;
  format: 'html' | 'mjml';
  body: string;
  text_body: string | null;
  tracking: Generated<boolean>;
  from_name: string | null;
  from_email: string | null;
  reply_to: string | null;
  created_by: string;
  created_at: Generated<Date>;
}

export interface MessagesTable {
  id: Generated<string>;
  org_id: string;
  audience_id: string;
  origin: 'triggered' | 'campaign' | 'system';
  category: MessageCategory;
  template_id: string | null;
  template_version: number | null;
  event_id: string | null;
  community_id: string | null;
  inline: Json<{ language: string; subject: string; preheader?: string | null; format?: 'html' | 'mjml'; html: string; text: string | null } | null> | null;
  variables: Json;
  sensitive: Generated<boolean>;
  idempotency_key: string | null;
  request_hash: string | null;
  custom_id: string | null;
  tags: ColumnType<string[], string[] | undefined, string[]>;
  send_at: NullableTimestamp;
  created_by: string;
  created_at: Generated<Date>;
  campaign_id: Generated<string | null>;
}

export interface DeliveriesTable {
  id: Generated<string>;
  org_id: string;
  message_id: string;
  contact_id: string | null;
  email: string;
  lane: Lane;
  priority: Generated<number>;
  status: DeliveryStatus;
  rule: string | null;
  rule_detail: string | null;
  due_at: Timestamp;
  expires_at: Timestamp;
  attempts: Generated<number>;
  lease_until: NullableTimestamp;
  leased_by: string | null;
  last_error: string | null;
  smtp_response: string | null;
  sent_at: NullableTimestamp;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface MessageEventsTable {
  id: Generated<number>;
  org_id: string;
  message_id: string;
  delivery_id: string | null;
  type: string;
  at: Timestamp;
  detail: Json;
}

export interface SuppressionsTable {
  org_id: string;
  email_lower: string;
  reason: 'hard_bounce' | 'complaint';
  created_at: Timestamp;
  delivery_id: string | null;
  detail: string | null;
}

export interface RateCountersTable {
  key: string;
  window_start: Timestamp;
  count: number;
}

export interface OutboxTable {
  id: Generated<string>;
  org_id: string;
  message_id: string;
  delivery_id: string;
  envelope_from: string;
  envelope_to: string;
  subject: string;
  raw: string;
  created_at: Generated<Date>;
}

// ---- reports (0008_reports.sql): rollups kept by a trigger on message_events, never written by code ----

export interface ReportHourlyTable {
  org_id: string;
  audience_id: string;
  template_id: string | null;
  /** the campaign message; null for triggered and system mail */
  message_id: string | null;
  hour: Timestamp;
  /** an event type, or 'bounced:unsent' / 'bounced:sent_hour' */
  type: string;
  shard: number;
  total: number;
  uniq: number;
}

export interface ReportLinkHourlyTable {
  org_id: string;
  audience_id: string;
  template_id: string | null;
  message_id: string | null;
  url_hash: string;
  url: string;
  hour: Timestamp;
  shard: number;
  total: number;
  uniq: number;
}

export interface ReportFirstsTable {
  delivery_id: string;
  type: string;
  at: Timestamp;
}

export interface ReportLinkClicksTable {
  delivery_id: string;
  url_hash: string;
  org_id: string;
  message_id: string;
  url: string;
  first_at: Timestamp;
  last_at: Timestamp;
  clicks: number;
}
