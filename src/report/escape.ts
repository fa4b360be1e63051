/** Escaping for everything the report page embeds: study and trial names, reasons and data come from users. */

const HTML_ESCAPES: Readonly<Record<string, string>> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Text for an element's content or a quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

/**
 * JSON for a `<script type="application/json">` element: `<`, `>` and `&` are written as
 * \u escapes (still the same JSON), so no value can close the element or open a comment;
 * U+2028 and U+2029 likewise, for tools that read the text as JavaScript.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** Script text for an inline `<script>`: a `</script` inside it (in a string or comment) would end the element early. */
export function inlineScript(js: string): string {
  return js.replace(/<\/(script)/gi, "<\\/$1").replace(/<!--/g, "<\\!--");
}

/** Style text for an inline `<style>`. */
export function inlineStyle(css: string): string {
  return css.replace(/<\/(style)/gi, "<\\/$1");
}
