import { button, greeting, layout, p, rawLink, SAMPLE_CONTACT, type BuiltinDefinition } from './layout.ts';

export const accountConfirmation: BuiltinDefinition = {
  category: 'transactional',
  variables: {
    'contact.email': 'address of the new account',
    first_name: 'optional: greets the person by name when present',
    organisation_name: 'name of the organisation',
    confirm_url: 'single-use link that confirms the address and activates the account',
  },
  sample: {
    contact: SAMPLE_CONTACT,
    vars: { organisation_name: 'Rencontres Numériques', confirm_url: 'https://envoi.example/account/confirm?token=sample' },
  },
  texts: {
    fr: {
      subject: 'Confirmez votre adresse e-mail',
      preheader: 'Un clic pour activer votre compte {{ organisation_name }}.',
      body: layout('fr', {
        title: 'Confirmez votre adresse e-mail',
        content: [
          greeting('fr'),
          p('Vous venez de créer un compte {{ organisation_name }} avec l’adresse <strong>{{ contact.email }}</strong>. Pour l’activer, confirmez que cette adresse est bien la vôtre :'),
          button('{{ confirm_url }}', 'Confirmer mon adresse'),
          rawLink('Si le bouton ne fonctionne pas, copiez ce lien dans votre navigateur :', '{{ confirm_url }}'),
          p('Vous n’avez pas créé de compte ? Ignorez simplement ce message : sans confirmation, le compte ne sera pas activé.'),
        ].join('\n'),
        footer: '{{ organisation_name }} · Message envoyé à {{ contact.email }} suite à la création d’un compte.',
      }),
    },
    en: {
      subject: 'Confirm your email address',
      preheader: 'One click to activate your {{ organisation_name }} account.',
      body: layout('en', {
        title: 'Confirm your email address',
        content: [
          greeting('en'),
          p('You have just created a {{ organisation_name }} account with the address <strong>{{ contact.email }}</strong>. To activate it, please confirm that this address is yours:'),
          button('{{ confirm_url }}', 'Confirm my address'),
          rawLink('If the button does not work, copy this link into your browser:', '{{ confirm_url }}'),
          p('Did not create an account? Just ignore this message: without confirmation, the account stays inactive.'),
        ].join('\n'),
        footer: '{{ organisation_name }} · Sent to {{ contact.email }} because an account was created with this address.',
      }),
    },
  },
};
