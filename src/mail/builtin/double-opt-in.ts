import { button, greeting, layout, p, rawLink, SAMPLE_CONTACT, type BuiltinDefinition } from './layout.ts';

export const doubleOptIn: BuiltinDefinition = {
  category: 'transactional',
  variables: {
    'contact.email': 'address that asked to subscribe',
    first_name: 'optional: greets the person by name when present',
    organisation_name: 'name of the organisation',
    confirm_url: 'single-use link that records the confirmed consent',
  },
  sample: {
    contact: SAMPLE_CONTACT,
    vars: { organisation_name: 'Rencontres Numériques', confirm_url: 'https://envoi.example/consent/confirm?token=sample' },
  },
  texts: {
    fr: {
      subject: 'Confirmez votre abonnement',
      preheader: 'Un dernier clic pour recevoir les e-mails de {{ organisation_name }}.',
      body: layout('fr', {
        title: 'Confirmez votre abonnement',
        content: [
          greeting('fr'),
          p('Vous avez demandé à recevoir les e-mails de {{ organisation_name }} à l’adresse <strong>{{ contact.email }}</strong>. Merci ! Pour terminer, confirmez votre abonnement :'),
          button('{{ confirm_url }}', 'Oui, je confirme mon abonnement'),
          rawLink('Si le bouton ne fonctionne pas, copiez ce lien dans votre navigateur :', '{{ confirm_url }}'),
          p('Sans confirmation de votre part, nous ne vous enverrons rien. Si vous n’êtes pas à l’origine de cette demande, ignorez simplement ce message.'),
          p('Vous pourrez vous désabonner à tout moment grâce au lien présent dans chacun de nos e-mails.'),
        ].join('\n'),
        footer: '{{ organisation_name }} · Message envoyé à {{ contact.email }} à la suite d’une demande d’abonnement.',
      }),
    },
    en: {
      subject: 'Please confirm your subscription',
      preheader: 'One last click to receive emails from {{ organisation_name }}.',
      body: layout('en', {
        title: 'Please confirm your subscription',
        content: [
          greeting('en'),
          p('You asked to receive emails from {{ organisation_name }} at <strong>{{ contact.email }}</strong>. Thank you! To finish, please confirm your subscription:'),
          button('{{ confirm_url }}', 'Yes, confirm my subscription'),
          rawLink('If the button does not work, copy this link into your browser:', '{{ confirm_url }}'),
          p('Without your confirmation we will send you nothing. If you did not ask for this, just ignore this message.'),
          p('You can unsubscribe at any time with the link included in every email we send.'),
        ].join('\n'),
        footer: '{{ organisation_name }} · Sent to {{ contact.email }} after a subscription request.',
      }),
    },
  },
};
