/**
 * The shared MJML frame of the built-in templates: a plain, light card that reads well in every
 * client and in dark mode, with system fonts (no web font requests).
 */

export type BuiltinLanguage = 'fr' | 'en';

const FONT = "-apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif";
export const ACCENT = '#1f5f8b';

export interface LayoutParts {
  /** `<mj-title>`: shown by some clients in the tab or window title. */
  title: string;
  /** MJML elements placed in the card's single column (mj-text, mj-button...). */
  content: string;
  /** Full-width MJML sections after the main card content, inside the card (e.g. two-button rows). */
  extraSections?: string;
  /** Line under the card. */
  footer: string;
}

export function layout(lang: BuiltinLanguage, parts: LayoutParts): string {
  return `<mjml lang="${lang}">
  <mj-head>
    <mj-title>${parts.title}</mj-title>
    <mj-attributes>
      <mj-all font-family="${FONT}" />
      <mj-text font-size="16px" line-height="1.55" color="#1d2327" padding="6px 28px" />
      <mj-button background-color="${ACCENT}" color="#ffffff" font-size="16px" font-weight="600" border-radius="6px" inner-padding="13px 26px" padding="14px 28px" />
      <mj-section background-color="#ffffff" padding="0" />
    </mj-attributes>
    <mj-style>a { color: ${ACCENT}; }</mj-style>
  </mj-head>
  <mj-body background-color="#f3f4f6" width="600px">
    <mj-section background-color="#f3f4f6" padding="20px 0 0 0"><mj-column><mj-spacer height="4px" /></mj-column></mj-section>
    <mj-section padding="22px 0 10px 0" border-radius="8px 8px 0 0">
      <mj-column>
${parts.content}
      </mj-column>
    </mj-section>
${parts.extraSections ?? ''}
    <mj-section padding="0 0 18px 0" border-radius="0 0 8px 8px"><mj-column><mj-spacer height="6px" /></mj-column></mj-section>
    <mj-section background-color="#f3f4f6" padding="10px 0 24px 0">
      <mj-column>
        <mj-text font-size="13px" line-height="1.5" color="#6b7280" align="center">${parts.footer}</mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
`;
}

/** A paragraph of the card. */
export const p = (html: string, attributes = '') => `        <mj-text${attributes ? ' ' + attributes : ''}>${html}</mj-text>`;

/** The main call to action. */
export const button = (href: string, label: string) => `        <mj-button href="${href}">${label}</mj-button>`;

/** The fallback for clients that do not follow the button: the raw link, small and breakable. */
export const rawLink = (intro: string, href: string) =>
  p(
    `${intro}<br /><a href="${href}" data-envoi-notrack style="color:${ACCENT};word-break:break-all;">${href}</a>`,
    'font-size="13px" color="#4b5563"',
  );

/** One built-in template kind, in every built-in language. */
export interface BuiltinDefinition {
  category: 'transactional' | 'participation' | 'marketing';
  /** The variables the texts use, with what the caller must give: the contract of the template. */
  variables: Readonly<Record<string, string>>;
  /** Data that satisfies `variables`: back-office previews and tests. */
  sample: {
    contact: { email: string; first_name: string | null; last_name: string | null; company: string | null; job_title: string | null };
    event?: { name: string; starts_at: string; ends_at: string; time_zone: string };
    vars: Record<string, unknown>;
  };
  texts: Record<BuiltinLanguage, { subject: string; preheader: string; body: string }>;
}

export const SAMPLE_CONTACT = {
  email: 'ada.lovelace@example.com',
  first_name: 'Ada',
  last_name: 'Lovelace',
  company: 'Analytical Engines',
  job_title: 'Engineer',
};

/** "Bonjour Ada," or "Bonjour," when the first name is unknown. */
export const greeting = (lang: BuiltinLanguage) =>
  p(`${lang === 'fr' ? 'Bonjour' : 'Hello'}{% if first_name != blank %} {{ first_name }}{% endif %},`);

/**
 * French typography: a no-break space before : ; ? ! so that they never start a line. Only where
 * a space is already written before them and a space or the end follows (`!=` in Liquid stays).
 */
export const frenchSpacing = (s: string) => s.replace(/ ([:;?!])(?=\s|$|<)/g, '\u00a0$1');
