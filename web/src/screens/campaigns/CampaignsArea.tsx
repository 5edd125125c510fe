import { Route, Routes } from 'react-router-dom';
import { CampaignList } from './CampaignList.tsx';
import { CampaignScreen } from './CampaignScreen.tsx';
import { EventMailScreen } from './EventMailScreen.tsx';
import './campaigns.css';

export default function CampaignsArea() {
  return (
    <Routes>
      <Route index element={<CampaignList />} />
      <Route path="events" element={<EventMailScreen />} />
      <Route path=":id" element={<CampaignScreen />} />
    </Routes>
  );
}
