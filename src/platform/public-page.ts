/** The frame of envoi's public pages (unsubscribe, signup, confirmations): one small, escaped, script-free document. */
export type PageLanguage = 'fr' | 'en';

export const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

export function pageLanguage(lang: unknown, acceptLanguage: string | undefined): PageLanguage {
  if (lang === 'fr' || lang === 'en') return lang;
  // The first of fr / en in the browser's preference order; English otherwise.
  for (const part of (acceptLanguage ?? '').split(',')) {
    const tag = part.split(';')[0]!.trim().toLowerCase();
    if (tag.startsWith('fr')) return 'fr';
    if (tag.startsWith('en')) return 'en';
  }
  return 'en';
}

/** `title` is plain text (escaped here); `body` is HTML its caller escaped. */
export function publicPage(lang: PageLanguage, title: string, body: string): string {
  return `<!doctype html><html lang="${lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#222;line-height:1.5}button{font-size:1rem;padding:.6rem 1.2rem;border-radius:6px;border:0;background:#1f5fbf;color:#fff;cursor:pointer}label{display:block;margin:1rem 0}input[type=email],input[type=text],input[type=password]{font-size:1rem;padding:.4rem;width:100%;box-sizing:border-box}p.note{color:#555;font-size:.9rem}.hp{position:absolute;left:-10000px}</style></head><body><main><h1>${escapeHtml(title)}</h1>${body}</main></body></html>`;
}
