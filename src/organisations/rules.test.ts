import { describe, expect, it } from 'vitest';
import { keyDisplayPrefix, passwordProblem, roleAllows } from './rules.ts';

describe('roles', () => {
  it('orders viewer < editor < owner', () => {
    expect(roleAllows('viewer', 'viewer')).toBe(true);
    expect(roleAllows('viewer', 'editor')).toBe(false);
    expect(roleAllows('editor', 'editor')).toBe(true);
    expect(roleAllows('editor', 'owner')).toBe(false);
    expect(roleAllows('owner', 'editor')).toBe(true);
    expect(roleAllows('owner', 'owner')).toBe(true);
  });
});

describe('passwords and keys', () => {
  it('requires a reasonable password length', () => {
    expect(passwordProblem('short')).toMatch(/at least/);
    expect(passwordProblem('x'.repeat(300))).toMatch(/at most/);
    expect(passwordProblem('correct horse battery')).toBeNull();
  });
  it('shows only a prefix of a key', () => {
    expect(keyDisplayPrefix('ek_abcdefghijklmnop')).toBe('ek_abcdefgh');
  });
});
