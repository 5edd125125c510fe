import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { BrowserRouter } from 'react-router-dom';
import { ApiError } from './api.ts';
import { AuthProvider, useMeQuery } from './auth.tsx';
import { QueryStatus } from './components/Status.tsx';
import { ToastProvider } from './components/Toast.tsx';
import { I18nProvider } from './i18n/index.tsx';
import { Layout } from './Layout.tsx';
import { AppRoutes } from './routes.tsx';
import { LoginScreen } from './screens/login/LoginScreen.tsx';

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      staleTime: 15_000,
      refetchOnWindowFocus: false,
      // A 4xx will not get better by asking again.
      retry: (n, e) => !(e instanceof ApiError && e.status < 500) && n < 2,
    },
  },
});

function Gate() {
  const me = useMeQuery();
  return (
    <QueryStatus query={me}>
      {me.data ? (
        <AuthProvider me={me.data}>
          <Layout>
            <AppRoutes />
          </Layout>
        </AuthProvider>
      ) : (
        <LoginScreen />
      )}
    </QueryStatus>
  );
}

export function App() {
  return (
    <QueryClientProvider client={queryClient}>
      <I18nProvider>
        <ToastProvider>
          <BrowserRouter>
            <Gate />
          </BrowserRouter>
        </ToastProvider>
      </I18nProvider>
    </QueryClientProvider>
  );
}
