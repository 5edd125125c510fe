import { Route, Routes } from 'react-router-dom';
import { OutboxScreen } from './OutboxScreen.tsx';
import './outbox.css';

export default function OutboxArea() {
  return (
    <Routes>
      <Route index element={<OutboxScreen />} />
      <Route path=":id" element={<OutboxScreen />} />
    </Routes>
  );
}
