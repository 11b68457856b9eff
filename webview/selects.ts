/**
 * Dropdowns that open where they fit: a vscode-single-select opens its list below itself unless `position` says
 * "above". Near the bottom of the sidebar the list would run off-screen, so each select is pointed up or down
 * just before it opens (a pointer or key press on it) and whenever the page scrolls or resizes.
 */
const OPT_HEIGHT = 22; // @vscode-elements' option row height
const VISIBLE_OPTS = 10; // and the most rows its list shows before scrolling

type Select = HTMLElement & { position: 'above' | 'below' };

/** "above" when the list does not fit below the select but fits better above it */
export function placeSelect(sel: Select, viewportHeight = window.innerHeight): void {
  const r = sel.getBoundingClientRect();
  const n = sel.querySelectorAll('vscode-option').length;
  const need = Math.min(n, VISIBLE_OPTS) * OPT_HEIGHT + 8;
  const below = viewportHeight - r.bottom;
  const want = below < need && r.top > below ? 'above' : 'below';
  if (sel.position !== want) sel.position = want;
}

export function placeSelects(): void {
  const all = () => document.querySelectorAll<Select>('vscode-single-select');
  const onPress = (e: Event) => {
    for (const t of e.composedPath()) if (t instanceof HTMLElement && t.tagName === 'VSCODE-SINGLE-SELECT') placeSelect(t as Select);
  };
  document.addEventListener('pointerdown', onPress, true);
  document.addEventListener('keydown', onPress, true);
  const placeAll = () => all().forEach((s) => placeSelect(s));
  window.addEventListener('scroll', placeAll, { passive: true });
  window.addEventListener('resize', placeAll);
}
