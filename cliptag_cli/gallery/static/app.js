// The gallery's router (#/..., so any page can be bookmarked and the server stays static),
// the search box and the keyboard shortcuts.
import { href } from './api.js';
import { errorBox, h } from './dom.js';
import * as pages from './pages.js';
import { selectionBar } from './selection.js';
import { teach } from './teach.js';

const main = document.getElementById('main');
const search = document.getElementById('q');
const views = {
  '': { title: () => 'Vocabulary', render: pages.home },
  tag: { title: (r) => r.arg, render: pages.listing('tag'), suggest: href.tag },
  category: { title: (r) => r.arg, render: pages.listing('category'), suggest: href.category },
  search: { title: (r) => `Search: ${r.params.get('q') || ''}`, render: pages.search, suggest: href.tag },
  image: { title: (r) => r.arg, render: pages.image },
  failed: { title: () => 'Failed images', render: pages.failed },
  teach: { title: () => 'Teach a tag', render: teach },
};
let generation = 0;
let cleanups = [];

// "#/tag/dog%20bed?limit=10" -> {view: "tag", arg: "dog bed", params}
function parse(hash) {
  const text = hash.replace(/^#\/?/, '');
  const cut = text.indexOf('?');
  const path = cut < 0 ? text : text.slice(0, cut);
  const [view, ...rest] = path.split('/');
  let arg = rest.join('/');
  try {
    arg = decodeURIComponent(arg);
  } catch {
    // a hand-typed "%" stays as it is
  }
  return { view, arg, params: new URLSearchParams(cut < 0 ? '' : text.slice(cut + 1)) };
}

async function render({ focus }) {
  const ctx = { alive: ((mine) => () => mine === generation)(++generation), onCleanup: (fn) => cleanups.push(fn) };
  cleanups.splice(0).forEach((fn) => fn());
  const route = parse(location.hash);
  const view = views[route.view];
  search.value = route.view === 'search' ? route.params.get('q') || '' : '';
  document.title = `${view ? view.title(route) : 'Not found'} · cliptag gallery`;
  main.replaceChildren();
  main.setAttribute('aria-busy', 'true');
  try {
    if (!view) throw new Error(`There is no page ${location.hash}.`);
    const done = view.render(main, ctx, route);
    if (focus) main.querySelector('h1')?.focus({ preventScroll: true }); // where the new page starts
    await done;
  } catch (err) {
    if (ctx.alive()) main.append(errorBox(err, view?.suggest));
  } finally {
    if (ctx.alive()) main.removeAttribute('aria-busy');
  }
  const lost = !document.activeElement || document.activeElement === document.body; // e.g. the clicked link is gone
  if (focus && ctx.alive() && lost) main.querySelector('h1')?.focus();
  if (ctx.alive()) document.body.dataset.rendered = String(generation); // pages rendered so far (tests wait on it)
}

window.addEventListener('hashchange', () => {
  if (location.hash === '' || location.hash.startsWith('#/')) render({ focus: true });
});

document.getElementById('search').addEventListener('submit', (event) => {
  event.preventDefault();
  const q = search.value.trim();
  if (!q) return;
  const target = href.search(q);
  if (location.hash === target) render({ focus: true });
  else location.hash = target;
});

document.querySelector('.skip').addEventListener('click', (event) => {
  event.preventDefault(); // not a route: focus the content instead
  main.focus();
});

// "/" focuses the search box, as on many sites; typed into a field it is just a slash.
document.addEventListener('keydown', (event) => {
  if (event.key !== '/' || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.target.closest?.('input, textarea, select, [contenteditable="true"]')) return;
  event.preventDefault();
  search.focus();
  search.select();
});

selectionBar(document.getElementById('selection'));
main.append(h('p', { class: 'meta' }, 'Loading…'));
render({ focus: false });
