import { Route, Routes } from 'react-router-dom';
import { TemplateList } from './TemplateList.tsx';
import { TemplateEditor } from './TemplateEditor.tsx';
import './templates.css';

export default function TemplatesArea() {
  return (
    <Routes>
      <Route index element={<TemplateList />} />
      <Route path=":audienceId/new" element={<TemplateEditor />} />
      <Route path=":audienceId/:templateId" element={<TemplateEditor />} />
    </Routes>
  );
}
