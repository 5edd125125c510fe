import { ACCENT, greeting, layout, p, SAMPLE_CONTACT, type BuiltinDefinition, type BuiltinLanguage } from './layout.ts';

// Two equal, unmistakable choices side by side (stacked on phones); NO is as easy to find as YES.
const choices = (yes: string, no: string) => `    <mj-section padding="4px 14px 8px 14px">
      <mj-column width="50%">
        <mj-button href="{{ yes_url }}" width="100%" padding="8px 14px" background-color="${ACCENT}">${yes}</mj-button>
      </mj-column>
      <mj-column width="50%">
        <mj-button href="{{ no_url }}" width="100%" padding="8px 14px" background-color="#4b5563">${no}</mj-button>
      </mj-column>
    </mj-section>`;

const DEADLINE: Record<BuiltinLanguage, string> = {
  fr: '{{ deadline | date: "%-d %B %Y" }}',
  en: '{{ deadline | date: "%B %-d, %Y" }}',
};

export const rePermission: BuiltinDefinition = {
  // A request for consent to marketing mail; how it may be sent is the consent policy's decision.
  category: 'marketing',
  variables: {
    'contact.email': 'address whose consent is asked again',
    first_name: 'optional: greets the person by name when present',
    organisation_name: 'name of the organisation',
    yes_url: 'link that records the renewed consent',
    no_url: 'link that records the refusal (unsubscribes)',
    deadline: 'date after which, without an answer, no more marketing mail is sent (shown in the render time zone)',
  },
  sample: {
    contact: SAMPLE_CONTACT,
    vars: {
      organisation_name: 'Rencontres Numériques',
      yes_url: 'https://envoi.example/consent/yes?token=sample',
      no_url: 'https://envoi.example/consent/no?token=sample',
      deadline: '2026-06-30T12:00:00Z',
    },
  },
  texts: {
    fr: {
      subject: 'Souhaitez-vous continuer à recevoir nos e-mails ?',
      preheader: `Un clic suffit : répondez avant le ${DEADLINE.fr}.`,
      body: layout('fr', {
        title: 'Souhaitez-vous continuer à recevoir nos e-mails ?',
        content: [
          greeting('fr'),
          p('Nous ne voulons écrire qu’aux personnes qui le souhaitent vraiment. Voulez-vous continuer à recevoir les e-mails d’information de {{ organisation_name }} à l’adresse <strong>{{ contact.email }}</strong> ?'),
        ].join('\n'),
        extraSections: [
          choices('OUI, je continue', 'NON, merci'),
          `    <mj-section padding="0 0 6px 0"><mj-column>`,
          p(`Sans réponse de votre part avant le <strong>${DEADLINE.fr}</strong>, nous ne vous enverrons plus nos e-mails d’information. Les messages liés à vos inscriptions (confirmations, informations pratiques) ne sont pas concernés.`),
          p('Merci de votre confiance,<br />L’équipe {{ organisation_name }}'),
          `    </mj-column></mj-section>`,
        ].join('\n'),
        footer: '{{ organisation_name }} · Message envoyé à {{ contact.email }} pour vérifier votre accord.',
      }),
    },
    en: {
      subject: 'Would you like to keep receiving our emails?',
      preheader: `One click is enough: please answer by ${DEADLINE.en}.`,
      body: layout('en', {
        title: 'Would you like to keep receiving our emails?',
        content: [
          greeting('en'),
          p('We only want to write to people who really want to hear from us. Would you like to keep receiving news from {{ organisation_name }} at <strong>{{ contact.email }}</strong>?'),
        ].join('\n'),
        extraSections: [
          choices('YES, keep me subscribed', 'NO, thanks'),
          `    <mj-section padding="0 0 6px 0"><mj-column>`,
          p(`If we have not heard from you by <strong>${DEADLINE.en}</strong>, we will stop sending you our newsletters. Emails about your registrations (confirmations, practical information) are not affected.`),
          p('Thank you for your trust,<br />The {{ organisation_name }} team'),
          `    </mj-column></mj-section>`,
        ].join('\n'),
        footer: '{{ organisation_name }} · Sent to {{ contact.email }} to check that you still agree.',
      }),
    },
  },
};
