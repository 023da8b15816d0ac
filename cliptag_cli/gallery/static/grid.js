// Thumbnail grids (arrow keys move between cards) and continuous scrolling through next_token.
import { href, picture } from './api.js';
import { errorBox, h, score } from './dom.js';
import { pickButton } from './selection.js';

export function grid(label) {
  const list = h('ul', { class: 'grid', 'aria-label': label });
  list.addEventListener('keydown', moveFocus);
  return list;
}

// One image: a link to its page, its 320 px rendition (never the original), its key and score.
export function card({ key, score: value, note, source }) {
  const img = h('img', { src: picture('grid', key), alt: '', width: 320, height: 320, loading: 'lazy', decoding: 'async' });
  const link = h(
    'a',
    { class: 'card', href: href.image(key), title: key, 'data-key': key },
    img,
    h('span', { class: 'key' }, key),
    value === undefined ? null : h('span', { class: 'score', 'data-score': value }, score(value)),
    source === 'person' ? h('span', { class: 'confirmed', title: 'confirmed by a person' }, '✓ confirmed') : null,
    source === 'examples' ? h('span', { class: 'taught', title: 'a tag taught by example' }, 'taught') : null,
    note ? h('span', { class: 'note' }, note) : null,
  );
  img.addEventListener('error', () => link.classList.add('broken'), { once: true });
  return h('li', { class: 'tile' }, link, pickButton(key));
}

function moveFocus(event) {
  if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
  const current = event.target.closest('.card');
  if (!current) return;
  const cards = [...event.currentTarget.querySelectorAll('.card')];
  const columns = cards.filter((c) => c.offsetTop === cards[0].offsetTop).length || 1;
  const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns, ArrowUp: -columns }[event.key];
  const next = step === undefined ? null : cards[cards.indexOf(current) + step];
  if (next) {
    event.preventDefault();
    next.focus();
  }
}

// Pages of a listing, one after the other: the "Load more" button loads the next one, and so
// does its coming near the viewport (IntersectionObserver). load(token) resolves to
// {items: [elements], next: token or undefined, end: text shown after the last page}.
export function pager(container, load, ctx, suggestionHref) {
  const more = h('button', { type: 'button', class: 'more' }, 'Load more');
  const observer = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) next();
  }, { rootMargin: '0px 0px 600px 0px' });
  ctx.onCleanup(() => observer.disconnect());
  let token;
  let busy = false;

  async function next() {
    if (busy) return;
    busy = true;
    const fromKeyboard = document.activeElement === more;
    more.disabled = true;
    more.textContent = 'Loading…';
    try {
      const page = await load(token);
      if (!ctx.alive()) return;
      container.append(...page.items);
      if (fromKeyboard) page.items[0]?.querySelector('a')?.focus();
      token = page.next;
      if (!token) {
        observer.disconnect();
        more.replaceWith(h('p', { class: 'end' }, page.end));
        return;
      }
      more.disabled = false;
      more.textContent = 'Load more';
      observer.unobserve(more); // observed again: reports at once if it is still in view
      observer.observe(more);
    } catch (err) {
      observer.disconnect();
      if (ctx.alive()) more.replaceWith(errorBox(err, suggestionHref));
    } finally {
      busy = false;
    }
  }

  more.addEventListener('click', next);
  return { button: more, start: () => next() };
}
