// The pages. Each renders into <main> and may await the API; ctx.alive() turns false when the
// user has moved on, so a late answer never lands on another page.
import { api, href, paths, picture, vocabulary } from './api.js';
import { announce, bytes, errorBox, h, score } from './dom.js';
import { card, grid, pager } from './grid.js';
import { likeThis, refinement } from './refine.js';
import { tagEditor } from './tags.js';

const PAGE = 40; // images per request while scrolling (the API allows 1-100)

function limit(params, fallback = PAGE) {
  const n = Number.parseInt(params.get('limit') ?? '', 10);
  return n >= 1 && n <= 100 ? n : fallback;
}

const heading = (...text) => h('h1', { tabindex: -1 }, ...text);

export async function home(main) {
  const vocab = await vocabulary();
  const categories = new Map();
  for (const tag of vocab.tags) {
    if (!categories.has(tag.category)) categories.set(tag.category, []);
    categories.get(tag.category).push(tag);
  }
  const sections = [...categories].map(([name, tags]) => h(
    'section',
    { class: 'category' },
    h('h2', {}, h('a', { href: href.category(name), title: `${name}: its images, best first` }, name)),
    h(
      'details',
      {},
      h('summary', {}, `${tags.length} tags`),
      h('ul', { class: 'tags' }, tags.map((t) => h(
        'li',
        { 'data-names': [t.name, ...t.synonyms].join('\n').toLowerCase() },
        h('a', { href: href.tag(t.name), title: t.synonyms.length ? `also: ${t.synonyms.join(', ')}` : null }, t.name),
      ))),
    ),
  ));
  const filter = h('input', { id: 'filter', type: 'search', autocomplete: 'off', placeholder: 'dog, beach, ...' });
  filter.addEventListener('input', () => filterTags(sections, filter.value.trim().toLowerCase()));
  main.append(
    heading('Vocabulary'),
    h('p', { class: 'meta' }, `${vocab.count} tags in ${categories.size} categories · model ${vocab.model}`),
    h('p', { class: 'note' }, 'Open a category for its images, best first, or its tags for theirs. ',
      'How many images each tag has is not shown: counting them means reading the whole tag from the index.'),
    h('p', { class: 'filter' }, h('label', { for: 'filter' }, 'Filter tags '), filter),
    h('div', { class: 'categories' }, sections),
  );
}

function filterTags(sections, text) {
  for (const section of sections) {
    let shown = 0;
    for (const li of section.querySelectorAll('li')) {
      const match = !text || li.dataset.names.includes(text);
      li.hidden = !match;
      shown += match;
    }
    section.hidden = Boolean(text) && shown === 0;
    section.querySelector('details').open = Boolean(text) && shown > 0;
  }
}

// A tag's or a category's images, best first, page after page.
export function listing(kind) {
  return async (main, ctx, { arg: name, params }) => {
    const title = heading(kind === 'tag' ? 'Tag ' : 'Category ', h('q', {}, name));
    const meta = h('p', { class: 'meta' }, 'Confirmed by a person first, then best first, by score.');
    const list = grid(`Images ${kind === 'tag' ? 'tagged' : 'in'} ${name}`);
    const path = kind === 'tag' ? paths.tag(name) : paths.category(name);
    let shown = 0;
    const pages = pager(list, async (token) => {
      const page = await api(path, { limit: limit(params), next_token: token });
      if (!token && page.tag.toLowerCase() !== name.toLowerCase()) {
        meta.append(` “${name}” is ${kind === 'tag' ? 'a synonym of' : 'known as'} “${page.tag}”.`);
      }
      shown += page.images.length;
      announce(`${shown} images`);
      return {
        items: page.images.map(card),
        next: page.next_token,
        end: shown ? `${shown} images, all shown.` : `No image has this ${kind} yet.`,
      };
    }, ctx, kind === 'tag' ? href.tag : href.category);
    main.append(title, meta, list, pages.button);
    await pages.start();
  };
}

export async function search(main, ctx, { params }) {
  const q = (params.get('q') || '').trim();
  const like = params.get('like') || '';
  const title = [q ? ['Search ', h('q', {}, q)] : 'Search', like ? [' like ', h('q', {}, like)] : ''];
  main.append(heading(...title));
  if (!q && !like) {
    main.append(h('p', {}, 'Describe what you are looking for in the search box: “a dog running on the beach”.'));
    return;
  }
  main.append(refinement(params)); // before the answer: an error (an unknown tag) is corrected there
  const found = await api('/search', {
    q, like, limit: limit(params, 60), tag: params.getAll('tag'), not_tag: params.getAll('not_tag'),
    minus: params.getAll('minus'),
  });
  if (!ctx.alive()) return;
  const list = grid(`Images like “${found.query}”`);
  list.append(...found.images.map((hit) => card({ ...hit, note: hit.tags.slice(0, 3).map((t) => t.tag).join(', ') })));
  const count = found.images.length;
  announce(`${count} results`);
  main.append(h('p', { class: 'meta' }, count ? `${count} images, most similar first.` : 'Nothing found.'), list);
}

export async function image(main, ctx, { arg: key }) {
  const record = await api(paths.image(key, 'tags'));
  if (!ctx.alive()) return;
  const original = h('a', { href: picture('original', key) }, `Original${record.size ? ` (${bytes(record.size)})` : ''}`);
  const where = record.place;  // PlaceTags=On: from its GPS position
  const facts = h('p', { class: 'meta' },
    record.width ? `${record.width} × ${record.height} ${record.format}, ${bytes(record.size)} · ` : '', original,
    where ? h('span', { class: 'where', title: `${where.latitude}, ${where.longitude}` },
      ` · taken near ${[where.city, where.region, where.country].filter(Boolean).join(', ')}`) : null);
  main.append(h('h1', { tabindex: -1, class: 'key' }, key));
  if (record.caption) main.append(h('p', { class: 'caption' }, record.caption));  // Captions=On: as text, never markup
  if (record.status === 'failed') {
    main.append(h('div', { class: 'failure', role: 'note' },
      h('h2', {}, 'Could not be tagged'), h('p', { class: 'reason' }, record.error || 'no reason recorded')), facts);
    return;
  }
  const fit = Math.min(1, 1280 / Math.max(record.width, record.height, 1));
  const large = h('img', {
    class: 'large', src: picture('large', key), alt: `${key}: ${record.tags.slice(0, 3).map((t) => t.tag).join(', ')}`,
    width: Math.round(record.width * fit) || null, height: Math.round(record.height * fit) || null,
  });
  const scores = (items, name, link) => h('ol', { class: 'scores' }, items.map((item) => h('li', {},
    h('a', { href: link(item[name]) }, item[name]), ' ', h('span', { class: 'score' }, score(item.score)))));
  const similar = h('section', { 'aria-busy': 'true' }, h('h2', {}, 'Similar images'));
  const duplicates = h('section', { 'aria-busy': 'true' }, h('h2', {}, 'Near-duplicates'));
  main.append(
    h('div', { class: 'image-page' },
      h('figure', {}, large),
      h('div', { class: 'facts' }, facts,
        tagEditor(key, record, ctx),
        likeThis(key),
        h('section', {}, h('h2', {}, 'Categories'), scores(record.categories, 'category', href.category)))),
    similar, duplicates,
  );
  await Promise.all([fillSimilar(similar, key, ctx), fillDuplicates(duplicates, key, ctx)]);
}

async function fillSimilar(section, key, ctx) {
  try {
    const found = await api(paths.image(key, 'similar'), { limit: 12 });
    const others = found.images.filter((hit) => hit.key !== key);
    const list = grid(`Images like ${key}`);
    list.append(...others.map((hit) => card(hit)));
    if (ctx.alive()) section.append(others.length ? list : h('p', {}, 'None yet.'));
  } catch (err) {
    if (ctx.alive()) section.append(errorBox(err));
  } finally {
    section.removeAttribute('aria-busy');
  }
}

async function fillDuplicates(section, key, ctx) {
  try {
    const found = await api(paths.image(key, 'duplicates'));
    if (!ctx.alive()) return;
    if (!found.checked) {
      section.append(h('p', { class: 'note' },
        'Not checked: this deployment does not look for near-duplicates (the stack parameter NearDuplicates is Off).'));
    } else if (!found.images.length) {
      section.append(h('p', {}, 'None found.'));
    } else {
      const list = grid(`Near-duplicates of ${key}`);
      list.append(...found.images.map((d) => card({ key: d.key, score: d.similarity })));
      section.append(list);
    }
  } catch (err) {
    if (ctx.alive()) section.append(errorBox(err));
  } finally {
    section.removeAttribute('aria-busy');
  }
}

export async function failed(main, ctx, { params }) {
  const list = h('ul', { class: 'failures', 'aria-label': 'Failed images' });
  let shown = 0;
  const pages = pager(list, async (token) => {
    const page = await api('/images', { status: 'failed', limit: limit(params), next_token: token });
    shown += page.images.length;
    return {
      items: page.images.map((r) => h('li', {},
        h('a', { href: href.image(r.key) }, r.key),
        h('span', { class: 'meta' }, [bytes(r.size), r.format].filter(Boolean).join(', ')),
        h('p', { class: 'reason' }, r.error || 'no reason recorded'))),
      next: page.next_token,
      end: shown ? `${shown} failed, all shown.` : 'No image has failed.',
    };
  }, ctx);
  main.append(heading('Failed images'),
    h('p', { class: 'meta' }, 'Objects that could not be tagged, newest first, with the reason.'), list, pages.button);
  await pages.start();
}
