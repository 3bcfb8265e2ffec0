/**
 * The small template language of the message templates (templates/, docs/messages.md):
 * `{{name}}` puts a value in, `{{#name}}…{{/name}}` keeps its text only when the value is not
 * empty. Nothing else: no loops, no partials, no raw output. Each part of a message declares
 * which names it may use and which it must use outside any section, so a template that would
 * drop the code or the link, or that names a value nobody fills, is refused when it is loaded,
 * not when the first user is waiting for the message.
 */

type Node = { kind: 'text'; text: string } | { kind: 'value'; name: string } | Section;
interface Section {
  kind: 'section';
  name: string;
  children: Node[];
}

/** A parsed template; render it with `renderTemplate`. */
export interface Template {
  readonly nodes: readonly Node[];
}

/** What one part of a message may and must contain. */
export interface TemplateRules {
  allowed: readonly string[];
  /** each must appear at least once outside every section */
  required?: readonly string[];
}

/** A template refused when it was parsed: `problem` says why, without the template's text. */
export class TemplateSyntaxError extends Error {
  override name = 'TemplateSyntaxError';
}

const TAG = /\{\{\s*([#/]?)\s*([^{}]*?)\s*\}\}/g;
const NAME = /^[a-z][a-z0-9_]*$/;

/** Parses and checks `source` against `rules`; throws TemplateSyntaxError naming the fault. */
export function parseTemplate(source: string, rules: TemplateRules): Template {
  if (/\{\{|\}\}/.test(source.replace(TAG, ''))) throw new TemplateSyntaxError('a stray {{ or }}');
  const root: Node[] = [];
  const open: Section[] = [];
  const current = () => (open.length ? open[open.length - 1]!.children : root);
  let last = 0;
  for (const match of source.matchAll(TAG)) {
    const [whole, sigil, name] = match as unknown as [string, string, string];
    if (match.index > last) current().push({ kind: 'text', text: source.slice(last, match.index) });
    last = match.index + whole.length;
    if (!NAME.test(name)) throw new TemplateSyntaxError(`{{${sigil}${name}}} is not a placeholder`);
    if (!rules.allowed.includes(name))
      throw new TemplateSyntaxError(
        `unknown placeholder {{${name}}}: this part may use ${rules.allowed.map((n) => `{{${n}}}`).join(', ')}`,
      );
    if (sigil === '#') {
      const section: Section = { kind: 'section', name, children: [] };
      current().push(section);
      open.push(section);
    } else if (sigil === '/') {
      const closing = open.pop();
      if (closing?.name !== name)
        throw new TemplateSyntaxError(
          closing ? `{{/${name}}} closes {{#${closing.name}}}` : `{{/${name}}} closes nothing`,
        );
    } else current().push({ kind: 'value', name });
  }
  if (open.length) throw new TemplateSyntaxError(`{{#${open[open.length - 1]!.name}}} is never closed`);
  const rest = source.slice(last);
  if (rest) root.push({ kind: 'text', text: rest });
  for (const name of rules.required ?? [])
    if (!root.some((n) => n.kind === 'value' && n.name === name))
      throw new TemplateSyntaxError(`{{${name}}} is missing (it must appear outside any {{#…}} section)`);
  return Object.freeze({ nodes: root });
}

/**
 * Fills a template. Values go through `escape` (the HTML part escapes every one of them);
 * text written in the template is output as it is. A section stays when its value is not
 * empty. Every name was checked at parse time, so an unset value is an empty one.
 */
export function renderTemplate(
  template: Template,
  values: Readonly<Record<string, string | undefined>>,
  escape: (value: string) => string = (v) => v,
): string {
  const walk = (nodes: readonly Node[]): string =>
    nodes
      .map((n) =>
        n.kind === 'text'
          ? n.text
          : n.kind === 'value'
            ? escape(values[n.name] ?? '')
            : values[n.name]
              ? walk(n.children)
              : '',
      )
      .join('');
  return walk(template.nodes);
}
