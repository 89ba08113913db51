// Event-name patterns as Hookline reads them: `*` matches every name; otherwise
// `subject.action` where either part may be `*` for the whole part. Hookline's own
// operational events (subjects starting `hookline_`) are matched only by a pattern
// naming their subject, never by `*` or `*.action`. Used for the
// picker's live "matches N event names" preview and the test-send event list.

const PART = /^[a-z0-9_-]{1,64}$/;

/** Whether `pattern` is well formed (same rule as the API's listened_events). */
export function validPattern(pattern) {
  if (pattern === '*') return true;
  const parts = pattern.split('.');
  if (parts.length !== 2) return false;
  const [s, a] = parts;
  if (s === '*') return PART.test(a);
  return PART.test(s) && (a === '*' || PART.test(a));
}

export function matches(pattern, name) {
  const operational = name.startsWith('hookline_');
  if (pattern === '*') return !operational;
  const p = pattern.split('.');
  const n = name.split('.');
  if (p.length !== 2 || n.length !== 2) return false;
  if (p[0] === '*' && operational) return false;
  return (p[0] === '*' || p[0] === n[0]) && (p[1] === '*' || p[1] === n[1]);
}

/** Catalogue names covered by any of `patterns`. */
export function matchedNames(patterns, names) {
  return names.filter((n) => patterns.some((p) => matches(p, n)));
}

/** Splits a free-text pattern field on commas, spaces and new lines. */
export function splitPatterns(text) {
  return text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
}
