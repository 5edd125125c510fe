/** Text for a LIKE pattern: `%`, `_` and the escape character itself are literal, not wildcards. */
export const escapeLike = (s: string) => s.replace(/[\\%_]/g, '\\$&');
