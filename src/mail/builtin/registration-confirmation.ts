import { greeting, layout, p, SAMPLE_CONTACT, type BuiltinDefinition } from './layout.ts';

// Dates are shown in the event's own zone, whatever the server's or the reader's.
const FR_DATE = '"%A %-d %B %Y à %Hh%M", event.time_zone';
const EN_DATE = '"%A %-d %B %Y, %H:%M", event.time_zone';

export const registrationConfirmation: BuiltinDefinition = {
  category: 'transactional',
  variables: {
    'contact.email': 'address of the registered person',
    'event.name': 'name of the event',
    'event.starts_at': 'start (ISO 8601 string or Date)',
    'event.ends_at': 'end (ISO 8601 string or Date)',
    'event.time_zone': 'IANA zone of the event, e.g. Europe/Paris: the dates are shown in it',
    first_name: 'optional: greets the person by name when present',
    organisation_name: 'name of the organisation',
    manage_url: 'optional: link to change or cancel the registration',
  },
  sample: {
    contact: SAMPLE_CONTACT,
    event: {
      name: 'Rencontres Numériques 2026',
      starts_at: '2026-06-03T07:30:00Z',
      ends_at: '2026-06-04T16:00:00Z',
      time_zone: 'Europe/Paris',
    },
    vars: { organisation_name: 'Rencontres Numériques', manage_url: 'https://envoi.example/registrations/sample' },
  },
  texts: {
    fr: {
      subject: 'Inscription confirmée : {{ event.name }}',
      preheader: `Rendez-vous le {{ event.starts_at | date: ${FR_DATE} }}.`,
      body: layout('fr', {
        title: 'Inscription confirmée : {{ event.name }}',
        content: [
          greeting('fr'),
          p('Votre inscription à <strong>{{ event.name }}</strong> est bien enregistrée. Nous avons hâte de vous accueillir.'),
          p(
            `<strong>Début :</strong> {{ event.starts_at | date: ${FR_DATE} }}<br />` +
              `<strong>Fin :</strong> {{ event.ends_at | date: ${FR_DATE} }}<br />` +
              '<span style="color:#6b7280;">Heures indiquées dans le fuseau horaire {{ event.time_zone }}.</span>',
            'padding="10px 28px"',
          ),
          p('{% if manage_url != blank %}Pour modifier ou annuler votre inscription : <a href="{{ manage_url }}">gérer mon inscription</a>.{% endif %}'),
          p('Conservez ce message : il confirme votre inscription.'),
        ].join('\n'),
        footer: '{{ organisation_name }} · Message envoyé à {{ contact.email }} car une inscription à {{ event.name }} a été faite avec cette adresse.',
      }),
    },
    en: {
      subject: 'Registration confirmed: {{ event.name }}',
      preheader: `See you on {{ event.starts_at | date: ${EN_DATE} }}.`,
      body: layout('en', {
        title: 'Registration confirmed: {{ event.name }}',
        content: [
          greeting('en'),
          p('Your registration for <strong>{{ event.name }}</strong> is confirmed. We look forward to welcoming you.'),
          p(
            `<strong>Starts:</strong> {{ event.starts_at | date: ${EN_DATE} }}<br />` +
              `<strong>Ends:</strong> {{ event.ends_at | date: ${EN_DATE} }}<br />` +
              '<span style="color:#6b7280;">Times are given in the {{ event.time_zone }} time zone.</span>',
            'padding="10px 28px"',
          ),
          p('{% if manage_url != blank %}To change or cancel your registration: <a href="{{ manage_url }}">manage my registration</a>.{% endif %}'),
          p('Please keep this message: it confirms your registration.'),
        ].join('\n'),
        footer: '{{ organisation_name }} · Sent to {{ contact.email }} because this address was registered for {{ event.name }}.',
      }),
    },
  },
};
