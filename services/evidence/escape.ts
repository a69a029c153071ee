// Everything a report shows that a person or a database could have written (names, reasons, check
// details, approvers) goes through one of these before it reaches HTML or Markdown.

const HTML_ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text for HTML element content and quoted attribute values alike. */
export function html(text: string | number): string {
  return String(text).replace(/[&<>"']/g, (c) => HTML_ENTITIES[c]!);
}

/**
 * Text for a Markdown paragraph or table cell, never at the start of a line (the writers put a prefix
 * first, so `#`, `+` and `1.` cannot start a block): every character CommonMark or GitHub gives meaning
 * inline is backslash-escaped (so `<script>` stays text in renderers that pass raw HTML through), a
 * pipe cannot end a cell, and line breaks cannot end a row.
 */
export function md(text: string | number): string {
  return String(text)
    .replace(/[\\`*_[\]<>|~&]/g, (c) => `\\${c}`)
    .replace(/\r\n|\r|\n/g, ' ');
}

/** A link target for a report: only http(s) (LIFEBOAT_UI_URL is configuration, not code). */
export function safeUrl(url: string | null | undefined): string | null {
  return url && /^https?:\/\/[^\s]+$/.test(url) ? url : null;
}
