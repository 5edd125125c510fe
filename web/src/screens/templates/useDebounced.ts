import { useEffect, useState } from 'react';

/** `value`, once it has stopped changing for `ms`: the live preview renders a pause in typing, not every key. */
export function useDebounced<T>(value: T, ms: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const id = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(id);
  }, [value, ms]);
  return settled;
}
