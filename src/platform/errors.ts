/** The one error type the HTTP layer turns into the stable `{ error: { code, message, details } }` shape. */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export const badRequest = (code: string, message: string, details?: unknown) => new AppError(400, code, message, details);
export const notFound = (what: string) => new AppError(404, 'not_found', `${what} not found`);
export const conflict = (code: string, message: string, details?: unknown) => new AppError(409, code, message, details);
export const forbidden = (message = 'Your role does not allow this action') => new AppError(403, 'forbidden', message);
export const unauthorized = (message = 'Missing or invalid credentials') => new AppError(401, 'unauthorized', message);
