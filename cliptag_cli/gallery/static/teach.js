// "Teach a tag": the selected photos are the examples. "Check" fits the tag and shows what to
// expect (leave-one-out recall and precision) without keeping it; "Teach" keeps it, the library
// is re-tagged from stored embeddings, and the page follows the tag's images as they come.
import { api, href, paths, teachTag, vocabulary } from './api.js';
import { announce, errorBox, h } from './dom.js';
import { card, grid } from './grid.js';
import { clear, selected } from './selection.js';

// The API's tag names, without the comma (/images?all= separates tags with it); escaped for the
// v flag browsers compile a pattern attribute with.
const NAME_PATTERN = "\\w[\\w '&.\\(\\)!+\\-]*";

export async function teach(main, ctx) {
  const keys = selected();
  main.append(h('h1', { tabindex: -1 }, 'Teach a tag'));
  if (keys.length < 2) {
    main.append(h('p', {}, 'Select at least two photos that show the thing (☐ on any image of a tag page, a ',
      'category or a search), then come back here. More examples, from different angles and light, teach it better.'));
    return;
  }
  const examples = grid('Examples');
  examples.append(...keys.map((key) => card({ key })));
  const name = h('input', {
    id: 'teach-name', required: true, maxlength: 100, pattern: NAME_PATTERN, autocomplete: 'off',
    placeholder: 'our harbour, Rex, the blue logo',
  });
  const category = h('input', { id: 'teach-category', list: 'teach-categories', autocomplete: 'off', placeholder: 'optional' });
  const categories = h('datalist', { id: 'teach-categories' });
  vocabulary().then((v) => {
    const names = [...new Set(v.tags.map((t) => t.category).filter(Boolean))].sort();
    categories.append(...names.map((c) => h('option', { value: c })));
  }).catch(() => {});
  const check = h('button', { type: 'button', class: 'check' }, 'Check');
  const keep = h('button', { type: 'submit' }, 'Teach');
  const outcome = h('div', { class: 'teach-outcome', role: 'status' });
  const form = h('form', { class: 'teach-form' },
    h('label', { for: 'teach-name' }, 'Name of the tag'), name,
    h('label', { for: 'teach-category' }, 'Category'), category, categories,
    h('div', { class: 'actions' }, check, keep));

  async function run(apply) {
    if (!form.reportValidity()) return;
    check.disabled = keep.disabled = true;
    outcome.replaceChildren(apply ? 'Teaching…' : 'Fitting…');
    try {
      // An empty category is left out: teaching a name again keeps the one it had.
      const lesson = await teachTag({
        name: name.value.trim(), examples: selected(), category: category.value.trim() || undefined, apply,
      });
      if (!ctx.alive()) return;
      outcome.replaceChildren(
        h('p', { class: 'lesson-figures' },
          `Expected recall ${percent(lesson.recall)}, precision ${percent(lesson.precision)} `,
          `(a ${lesson.method}, threshold ${lesson.threshold.toFixed(4)}).`),
        h('pre', { class: 'lesson' }, lesson.report));
      if (apply) await follow(lesson, outcome, ctx);
    } catch (err) {
      if (ctx.alive()) outcome.replaceChildren(errorBox(err));
    } finally {
      check.disabled = keep.disabled = false;
    }
  }

  check.addEventListener('click', () => run(false));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    run(true);
  });
  main.append(
    h('p', { class: 'meta' }, `${keys.length} example photos. The tag is fitted on their stored embeddings: `,
      'no model runs and no photo is read again.'),
    examples, form, outcome);
}

const percent = (x) => `${Math.round(x * 100)}%`;

// After "Teach": the tag's page as the re-tag reaches the library.
async function follow(lesson, outcome, ctx) {
  clear();
  const link = h('a', { href: href.tag(lesson.name) }, `the images of “${lesson.name}”`);
  const progress = h('p', {}, 'The library is being re-tagged with it…');
  outcome.append(h('p', {}, `Taught “${lesson.name}”. See `, link, '.'), progress);
  announce(`Taught ${lesson.name}`);
  const deadline = Date.now() + 60000;
  while (ctx.alive() && Date.now() < deadline) {
    const page = await api(paths.tag(lesson.name), { limit: 100 }).catch(() => null);
    if (!ctx.alive()) return;
    const count = page ? page.images.length : 0;
    progress.replaceChildren(`${count}${page?.next_token ? '+' : ''} image(s) have it so far.`);
    if (count >= lesson.examples) break;
    await new Promise((resolve) => { setTimeout(resolve, 1000); });
  }
}
