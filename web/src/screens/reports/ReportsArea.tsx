import { Route, Routes } from 'react-router-dom';
import { ReportHome } from './ReportHome.tsx';
import { CampaignReport, TemplateReport } from './ScopedReports.tsx';
import './reports.css';

export default function ReportsArea() {
  return (
    <Routes>
      <Route index element={<ReportHome />} />
      <Route path="campaigns/:campaignId" element={<CampaignReport />} />
      <Route path="templates/:audienceId/:templateId" element={<TemplateReport />} />
    </Routes>
  );
}
