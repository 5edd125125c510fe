/*
 * The variables a template asks for beyond the contact and event: `{{ vars.x }}` and the ones the
 * built-in re-permission template uses. A preview or a test needs a value for each (the API names a
 * missing one); these are samples the author can change.
 */
const KNOWN: Record<string, (ctx: { organisation: string }) => unknown> = {
  yes_url: () => 'https://example.org/consent/yes',
  no_url: () => 'https://example.org/consent/no',
  deadline: () => new Date(Date.now() + 14 * 86_400_000).toISOString(),
  organisation_name: (c) => c.organisation,
};

export function sampleVariables(sources: (string | null | undefined)[], ctx: { organisation: string }): Record<string, unknown> {
  const text = sources.filter(Boolean).join('\n');
  const out: Record<string, unknown> = {};
  for (const m of text.matchAll(/\bvars\.([A-Za-z_][\w]*)/g)) out[m[1]!] ??= '';
  for (const [name, sample] of Object.entries(KNOWN)) if (new RegExp(`\\b${name}\\b`).test(text)) out[name] ??= sample(ctx);
  return out;
}

/** The variables textarea as an object, or the reason it is not one. */
export function parseVariables(json: string): { ok: true; value: Record<string, unknown> } | { ok: false; error: string } {
  if (json.trim() === '') return { ok: true, value: {} };
  try {
    const v = JSON.parse(json);
    if (v && typeof v === 'object' && !Array.isArray(v)) return { ok: true, value: v as Record<string, unknown> };
    return { ok: false, error: 'not an object' };
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
}
