/**
 * The one way screens talk to the envoi API: JSON in and out, the API's own error message in
 * thrown errors, and the session's CSRF token on every unsafe request (the session cookie alone is
 * refused for writes, see src/platform/http.ts).
 */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

let csrfToken: string | null = null;
/** Set from /v1/auth/login and /v1/me. */
export function setCsrfToken(token: string | null) {
  csrfToken = token;
}

/** The CSRF header for a request made without apiFetch (an upload with progress through XMLHttpRequest). */
export function csrfHeaders(): Record<string, string> {
  return csrfToken ? { 'x-envoi-csrf': csrfToken } : {};
}

/** Called when the API answers 401 to a logged-in screen: the session ended elsewhere. */
let onUnauthorized: (() => void) | null = null;
export function setUnauthorizedHandler(fn: (() => void) | null) {
  onUnauthorized = fn;
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export interface RequestOptions {
  /** a JSON value, or a Blob / File / string sent as is with `contentType` */
  body?: unknown;
  contentType?: string;
  query?: Record<string, string | number | boolean | null | undefined>;
  signal?: AbortSignal;
}

export function apiUrl(path: string, query?: RequestOptions['query']): string {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== null && v !== '') qs.set(k, String(v));
  const s = qs.toString();
  return s ? `${path}${path.includes('?') ? '&' : '?'}${s}` : path;
}

async function errorOf(res: Response): Promise<ApiError> {
  let code = `http_${res.status}`;
  let message = res.statusText || `HTTP ${res.status}`;
  let details: unknown;
  try {
    const body = await res.json();
    if (body?.error) {
      code = body.error.code ?? code;
      message = body.error.message ?? message;
      details = body.error.details;
    }
  } catch {
    /* not JSON: keep the status text */
  }
  return new ApiError(res.status, code, message, details);
}

/** The raw response of a successful call (for downloads); throws ApiError otherwise. */
export async function apiFetch(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { accept: 'application/json' };
  let body: BodyInit | undefined;
  if (opts.body !== undefined) {
    if (typeof opts.body === 'string' || opts.body instanceof Blob) {
      body = opts.body;
      headers['content-type'] = opts.contentType ?? 'text/plain';
    } else {
      body = JSON.stringify(opts.body);
      headers['content-type'] = 'application/json';
    }
  }
  if (UNSAFE.has(method) && csrfToken) headers['x-envoi-csrf'] = csrfToken;
  const res = await fetch(apiUrl(path, opts.query), { method, headers, body, credentials: 'same-origin', signal: opts.signal });
  if (!res.ok) {
    const err = await errorOf(res);
    if (res.status === 401 && path !== '/v1/auth/login') onUnauthorized?.();
    throw err;
  }
  return res;
}

export async function api<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const res = await apiFetch(method, path, opts);
  if (res.status === 204) return undefined as T;
  const type = res.headers.get('content-type') ?? '';
  return (type.includes('json') ? await res.json() : await res.text()) as T;
}

export const get = <T = unknown>(path: string, query?: RequestOptions['query'], signal?: AbortSignal) => api<T>('GET', path, { query, signal });
export const post = <T = unknown>(path: string, body?: unknown) => api<T>('POST', path, { body: body ?? {} });
export const patch = <T = unknown>(path: string, body: unknown) => api<T>('PATCH', path, { body });
export const del = <T = unknown>(path: string) => api<T>('DELETE', path);

/** The message to show for any thrown value. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
