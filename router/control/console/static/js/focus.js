// Re-rendering keeps the keyboard user's place: the focused element is found again by its data-focus-key.

export function keepFocus(root, render) {
  const focused = document.activeElement;
  const key = focused && root.contains(focused) ? focused.dataset.focusKey : undefined;
  render();
  if (key !== undefined) {
    const again = root.querySelector(`[data-focus-key="${CSS.escape(key)}"]`);
    if (again) again.focus({ preventScroll: true });
  }
}
