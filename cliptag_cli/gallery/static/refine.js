// Refining a search: tags every image must have, tags none may have, words to steer away from,
// an image the results should look like. All of it lives in the page's address, so a refined
// search is a link like any other; each change is a new address.
import { href, vocabulary } from './api.js';
import { h } from './dom.js';

const LABELS = { tag: 'with', not_tag: 'without', minus: 'minus', like: 'like' };

export function refinement(params) {
  const chips = h('ul', { class: 'chips', 'aria-label': 'Refinements' });
  for (const [name, label] of Object.entries(LABELS)) {
    for (const value of params.getAll(name)) {
      const remove = h('button', { type: 'button', class: 'chip-remove', 'aria-label': `Remove ${label} ${value}` },
        '×');
      remove.addEventListener('click', () => go(without(params, name, value)));
      chips.append(h('li', { class: `chip chip-${name}`, 'data-name': name, 'data-value': value },
        `${label}: ${value} `, remove));
    }
  }
  const tag = h('input', {
    name: 'tag', list: 'refine-tags', autocomplete: 'off', placeholder: 'a tag', 'aria-label': 'A tag',
  });
  const tags = h('datalist', { id: 'refine-tags' });
  vocabulary().then((v) => tags.append(...v.tags.map((t) => h('option', { value: t.name })))).catch(() => {});
  const require = h('button', { type: 'button', 'data-action': 'tag' }, 'Require');
  const exclude = h('button', { type: 'button', 'data-action': 'not_tag' }, 'Exclude');
  for (const button of [require, exclude]) {
    button.addEventListener('click', () => {
      if (tag.value.trim()) go(adding(params, button.dataset.action, tag.value.trim()));
    });
  }
  tag.addEventListener('keydown', (event) => { // Enter requires the tag, as the first button does
    if (event.key === 'Enter' && tag.value.trim()) go(adding(params, 'tag', tag.value.trim()));
  });
  const words = h('input', {
    name: 'minus', autocomplete: 'off', placeholder: 'words to steer away from', 'aria-label': 'Words to steer away from',
  });
  const away = h('button', { type: 'submit' }, 'Minus');
  const minus = h('form', { class: 'refine-minus' }, words, away);
  minus.addEventListener('submit', (event) => {
    event.preventDefault();
    if (words.value.trim()) go(adding(params, 'minus', words.value.trim()));
  });
  return h('div', { class: 'refine' }, chips, h('div', { class: 'refine-tags' }, tag, require, exclude, tags), minus);
}

// "More like this, plus words": a search for images like ``key``, with words if any.
export function likeThis(key) {
  const words = h('input', {
    name: 'q', autocomplete: 'off', placeholder: 'plus words: at night, in snow', 'aria-label': 'Words to add',
  });
  const form = h('form', { class: 'like-this' }, words, h('button', { type: 'submit' }, 'More like this'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const params = new URLSearchParams({ like: key });
    if (words.value.trim()) params.set('q', words.value.trim());
    go(params);
  });
  return form;
}

function adding(params, name, value) {
  const next = new URLSearchParams(params);
  if (!next.getAll(name).includes(value)) next.append(name, value);
  return next;
}

function without(params, name, value) {
  const next = new URLSearchParams();
  for (const [n, v] of params) if (!(n === name && v === value)) next.append(n, v);
  return next;
}

function go(params) {
  params.delete('limit');
  location.hash = href.refined(params);
}
