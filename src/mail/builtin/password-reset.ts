import { button, greeting, layout, p, rawLink, SAMPLE_CONTACT, type BuiltinDefinition } from './layout.ts';

export const passwordReset: BuiltinDefinition = {
  category: 'transactional',
  variables: {
    'contact.email': 'address of the account',
    first_name: 'optional: greets the person by name when present',
    organisation_name: 'name of the organisation',
    reset_url: 'single-use, short-lived link to the page where a new password is chosen',
  },
  sample: {
    contact: SAMPLE_CONTACT,
    vars: { organisation_name: 'Rencontres Numériques', reset_url: 'https://envoi.example/account/reset?token=sample' },
  },
  texts: {
    fr: {
      subject: 'Réinitialisation de votre mot de passe',
      preheader: 'Choisissez un nouveau mot de passe pour votre compte {{ organisation_name }}.',
      body: layout('fr', {
        title: 'Réinitialisation de votre mot de passe',
        content: [
          greeting('fr'),
          p('Nous avons reçu une demande de réinitialisation du mot de passe de votre compte {{ organisation_name }} (<strong>{{ contact.email }}</strong>).'),
          button('{{ reset_url }}', 'Choisir un nouveau mot de passe'),
          rawLink('Si le bouton ne fonctionne pas, copiez ce lien dans votre navigateur :', '{{ reset_url }}'),
          p('Pour votre sécurité, ce lien n’est valable que peu de temps et ne peut servir qu’une seule fois.'),
          p('Vous n’avez rien demandé ? Ignorez ce message : votre mot de passe actuel reste valable, et personne ne peut le changer sans accès à votre messagerie.'),
        ].join('\n'),
        footer: '{{ organisation_name }} · Message envoyé à {{ contact.email }} à la suite d’une demande de réinitialisation.',
      }),
    },
    en: {
      subject: 'Reset your password',
      preheader: 'Choose a new password for your {{ organisation_name }} account.',
      body: layout('en', {
        title: 'Reset your password',
        content: [
          greeting('en'),
          p('We received a request to reset the password of your {{ organisation_name }} account (<strong>{{ contact.email }}</strong>).'),
          button('{{ reset_url }}', 'Choose a new password'),
          rawLink('If the button does not work, copy this link into your browser:', '{{ reset_url }}'),
          p('For your security, this link expires shortly and can only be used once.'),
          p('Did not ask for this? Ignore this message: your current password still works, and nobody can change it without access to your mailbox.'),
        ].join('\n'),
        footer: '{{ organisation_name }} · Sent to {{ contact.email }} after a password reset request.',
      }),
    },
  },
};
