import { Route, Routes } from 'react-router-dom';
import { AudiencesScreen } from './AudiencesScreen.tsx';
import { ContactsScreen } from '../contacts/ContactsScreen.tsx';
import { ContactDetailScreen } from '../contacts/ContactDetailScreen.tsx';

export default function AudiencesArea() {
  return (
    <Routes>
      <Route index element={<AudiencesScreen />} />
      <Route path=":audienceId/contacts" element={<ContactsScreen />} />
      <Route path=":audienceId/contacts/:contactId" element={<ContactDetailScreen />} />
    </Routes>
  );
}
