// The photos a person picked to teach a tag from: kept for the visit (sessionStorage, never sent
// anywhere until "Teach"), toggled on any grid's cards, counted in a bar at the bottom.
import { h } from './dom.js';

const STORE = 'cliptag-selection';
const listeners = new Set();

export function selected() {
  try {
    const keys = JSON.parse(sessionStorage.getItem(STORE) || '[]');
    return Array.isArray(keys) ? keys.filter((k) => typeof k === 'string') : [];
  } catch {
    return [];
  }
}

function save(keys) {
  sessionStorage.setItem(STORE, JSON.stringify(keys));
  listeners.forEach((fn) => fn(keys));
}

export function toggle(key) {
  const keys = selected();
  const at = keys.indexOf(key);
  if (at < 0) keys.push(key);
  else keys.splice(at, 1);
  save(keys);
}

export const clear = () => save([]);

export function onChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

// A card's toggle: a button of its own beside the link, so picking never opens the image.
export function pickButton(key) {
  const b = h('button', { type: 'button', class: 'pick', 'data-key': key });
  showPick(b, selected());
  b.addEventListener('click', () => toggle(key));
  return b;
}

function showPick(b, keys) {
  const on = keys.includes(b.dataset.key);
  b.setAttribute('aria-pressed', String(on));
  b.setAttribute('aria-label', `${on ? 'Unselect' : 'Select'} ${b.dataset.key} for teaching a tag`);
  b.title = on ? 'Selected: click to unselect' : 'Select to teach a tag from it';
  b.textContent = on ? '☑' : '☐';
}

onChange((keys) => document.querySelectorAll('button.pick').forEach((b) => showPick(b, keys)));

// The bar: "3 selected · Teach a tag… · Clear", hidden while nothing is selected.
export function selectionBar(bar) {
  const show = (keys) => {
    bar.hidden = keys.length === 0;
    const clearButton = h('button', { type: 'button' }, 'Clear');
    clearButton.addEventListener('click', clear);
    bar.replaceChildren(
      h('span', {}, `${keys.length} selected`),
      h('a', { href: '#/teach' }, 'Teach a tag from them…'),
      clearButton,
    );
  };
  show(selected());
  onChange(show);
}
