// Pure helpers for keyboard shortcuts: the name a keymap knows a key event by, and whether the user is typing.

const TYPING_TAGS = ['INPUT', 'TEXTAREA', 'SELECT']

/** Whether keys pressed in `target` are typing (a form field or editable text) rather than shortcuts. */
export function isTyping(target) {
  return !!target && (TYPING_TAGS.includes(target.tagName) || !!target.isContentEditable)
}

/**
 * The name of a key event in a keymap, or null for an event that is never a shortcut (IME composition, Alt
 * or Meta held). Shift is not part of the name: '?' is already shifted, and the handlers that extend with
 * Shift read `event.shiftKey`. Ctrl is, with letters folded to lower case, so Ctrl+Z and Ctrl+Shift+Z are
 * both 'Ctrl+z'. The space bar is 'Space'.
 */
export function shortcutName(event) {
  if (event.isComposing || event.altKey || event.metaKey) return null
  const key = event.key === ' ' ? 'Space' : event.key
  if (!event.ctrlKey) return key
  return `Ctrl+${key.length === 1 ? key.toLowerCase() : key}`
}
