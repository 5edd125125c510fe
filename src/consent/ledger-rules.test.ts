import { describe, expect, it } from 'vitest';
import { currentAnswers, type AnswerRecord } from './ledger-rules.ts';

const at = (h: number) => new Date(Date.UTC(2026, 0, 1, h));
const rec = (email: string, action: AnswerRecord['action'], h: number): AnswerRecord => ({ email_hash: `#${email}`, contact_id: `c-${email}`, email, action, at: at(h) });

describe('currentAnswers', () => {
  it('keeps the latest answer, dated when it was first given', () => {
    const answers = currentAnswers([
      rec('a', 'repermission_yes', 1),
      rec('a', 'repermission_yes', 5), // the same YES again: still the YES of 01:00
      rec('b', 'repermission_yes', 1),
      rec('b', 'repermission_no', 2),
      rec('b', 'repermission_yes', 6), // a change of mind: the YES of 06:00
      rec('c', 'repermission_no', 3),
      rec('c', 'repermission_no', 4),
    ]);
    expect(answers).toEqual([
      { contact_id: 'c-a', email: 'a', answer: 'yes', at: at(1) },
      { contact_id: 'c-b', email: 'b', answer: 'yes', at: at(6) },
      { contact_id: 'c-c', email: 'c', answer: 'no', at: at(3) },
    ]);
  });
});
