// Pure helpers for the keys of a project's labels: by default 1-9, then 0, then the letters the page does not use
// itself; a project may set its own keys ({label: key}, checked on the server by annotation.validation).

/** The page's own single keys, which no label gets (annotation/validation.py APP_KEYS lists the same). */
export const APP_KEYS = {
  u: 'undo',
  s: 'skip',
  n: 'next task',
  '?': 'ask a question',
  f: 'fit the image',
  g: 'grid view',
  '+': 'zoom in',
  '=': 'zoom in',
  '-': 'zoom out',
  j: 'move to the next row on the review page',
  k: 'move to the previous row on the review page',
}

/** Keys given to labels in order when the project sets none: 1-9, 0, then the free letters. */
export const DEFAULT_KEYS = [...'1234567890', ...'abcdefghijklmnopqrstuvwxyz'].filter((k) => !(k in APP_KEYS))

/** A key as a keymap knows it: one character, letters in lower case; null for anything else. */
function normal(key) {
  return typeof key === 'string' && key.length === 1 && key.trim() ? key.toLowerCase() : null
}

/**
 * The key of each label, in label order (null for a label past the last free key). A project's own keys come
 * first; one that is the page's own or already taken is ignored (the server refuses both). Every other label
 * gets the next default key no label has.
 */
export function labelKeys(labels, custom) {
  const own = custom && typeof custom === 'object' ? custom : {}
  const taken = new Set()
  const keys = labels.map((label) => {
    const key = normal(own[label])
    if (key === null || key in APP_KEYS || taken.has(key)) return null
    taken.add(key)
    return key
  })
  const free = DEFAULT_KEYS.filter((k) => !taken.has(k))
  let next = 0
  return keys.map((key) => key ?? free[next++] ?? null)
}

/** Keymap entries calling `choose(index, event)` for each label's key (a letter also with Shift or Caps Lock). */
export function hotkeyMap(keys, choose) {
  const entries = []
  keys.forEach((key, index) => {
    if (key === null) return
    const run = (event) => choose(index, event)
    entries.push([key, run])
    if (key.toUpperCase() !== key) entries.push([key.toUpperCase(), run])
  })
  return Object.fromEntries(entries)
}
