// Text a peer chose (a task id, a worker's error code or message), made fit for one log line: quoted as JSON, so a
// line break or a control character in it cannot start a forged line, and cut to `max` characters, so a message of
// megabytes cannot fill the log. The refusal still names the input: its start, and how long it was.

/** `text` as a JSON string of at most `max` of its characters, with its length when it was cut. */
export function quoteForLog(text: string, max = 200): string {
  const cut = text.length > max;
  // JSON.stringify leaves U+2028 and U+2029 as they are; some log viewers break lines at them
  const q = JSON.stringify(cut ? text.slice(0, max) : text).replace(/[\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
  return cut ? `${q}... (${text.length} characters)` : q;
}
