import { z } from 'zod';

/**
 * Characters (Unicode code points; a lone surrogate counts as one) in `text`, counting no further
 * than `limit + 1`: enough to tell whether it is over the limit without walking a long string to
 * its end.
 */
export function characterCount(text: string, limit: number): number {
  // Every character is one or two UTF-16 units, so the unit count bounds the character count.
  if (text.length <= limit) return text.length;
  let count = 0;
  for (const _ of text) if (++count > limit) break;
  return count;
}

/**
 * A text field that is stored in Redis: a device id, a transaction id, a ban's reason.
 *
 * Redis stores bytes, and a string with a lone surrogate ("\ud800") has no UTF-8 form: on its way
 * to Redis each one becomes U+FFFD, so "\ud800" and "\udfff" would be one device, and one device's
 * transaction ids "\ud800", "\ud801", ... one transaction, every one of them answered clean. Such
 * text is refused, naming the field.
 *
 * The length limit counts characters, not UTF-16 units, so that 128 emoji are as long as 128
 * letters, as the README's "1–128 characters" says.
 */
export function textField(name: string, maxLength: number, { trim = false }: { trim?: boolean } = {}) {
  const text = z.string({ error: (issue) => (issue.input === undefined ? `${name} is required` : `${name} must be a string`) });
  return (trim ? text.trim() : text).check((ctx) => {
    const value = ctx.value;
    if (value.length === 0) {
      ctx.issues.push({ code: 'custom', input: value, message: `${name} must not be empty` });
      return;
    }
    if (!value.isWellFormed()) {
      ctx.issues.push({ code: 'custom', input: value, message: `${name} must be well-formed Unicode (it holds a lone surrogate such as \\ud800)` });
    }
    if (characterCount(value, maxLength) > maxLength) {
      ctx.issues.push({ code: 'custom', input: value, message: `${name} must be at most ${maxLength} characters` });
    }
  });
}
